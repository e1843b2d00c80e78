import DatapathCore
import DatapathWire
import Logging

extension Stack {
    /// Parses and applies a configuration, all or nothing (DESIGN.md §7): every line is checked
    /// against the devices that exist and those the configuration creates, and AF_PACKET devices
    /// are opened, before anything changes. Throws `.syntax` (a `ConfigError`) or `.apply` (a
    /// `ConfigApplyError`: unknown device, wrong kind, interface that cannot be opened). Returns what the
    /// configuration asks of whoever shows the stack (`filter list`), which is not stack state.
    /// Says so on the stack's logger at `logLevel` (a control channel's single changes, which
    /// a routing daemon makes thousands of a second, log below notice).
    @discardableResult
    public func apply(_ text: String, logLevel: Logger.Level = .notice) throws(ConfigurationError) -> AppliedConfiguration {
        let lines: [ConfigLine]
        do throws(ConfigError) { lines = try ConfigParser.parse(text) } catch { throw .syntax(error) }
        return try apply(lines, logLevel: logLevel)
    }

    func apply(_ lines: [ConfigLine], logLevel: Logger.Level) throws(ConfigurationError) -> AppliedConfiguration {
        do throws(ConfigApplyError) { return try applyParsed(lines, logLevel: logLevel) }
        catch { throw .apply(error) }
    }

    func applyParsed(_ lines: [ConfigLine], logLevel: Logger.Level) throws(ConfigApplyError) -> AppliedConfiguration {
        try validate(lines)
        var opened: [Int: AFPacketDevice] = [:]
        for line in lines {
            guard case .addAFPacket(let name, let interface) = line.command else { continue }
            do {
                opened[line.line] = try AFPacketDevice(interface: interface, name: name, configuration: afpacketConfiguration)
            } catch {
                throw ConfigApplyError(line: line.line, word: interface,
                                       cause: .cannotOpen(interface: interface, reason: "\(error)"))
            }
        }
        var applied = AppliedConfiguration()
        // One FIB publication for the whole configuration (the routes, and the local, subnet
        // and broadcast routes addresses bring), not one per line.
        try fib.batch { () throws(ConfigApplyError) in
            for line in lines {
                if case .listFilter = line.command { applied.listsFilter = true }
                do throws(StackError) {
                    try execute(line.command, afpacket: opened[line.line])
                } catch {
                    throw ConfigApplyError(line: line.line, word: line.words.first ?? "", cause: .stack(error))
                }
            }
        }
        if !lines.isEmpty {
            logger.log(level: logLevel, "configuration applied: \(lines.count) command\(lines.count == 1 ? "" : "s"), \(fib.count) routes")
        }
        return applied
    }

    func execute(_ command: ConfigCommand, afpacket: AFPacketDevice?) throws(StackError) {
        switch command {
        case .addAFPacket:
            if let afpacket { try add(afpacket, kind: .afpacket(interface: afpacket.interface)) }
        case .addBond(let name, let mode, let policy): try addBond(name, mode: mode, hashPolicy: policy)
        case .addBridge(let name): try addBridge(name)
        case .setMaster(let device, let master): try setMaster(device, master: master)
        case .setState(let device, let up): try setUp(device, up)
        case .setMTU(let device, let mtu): try setMTU(device, mtu)
        case .addAddress(let address, let length, let device): try addAddress(address, prefixLength: length, device: device)
        case .addNeighbour(let address, let linkAddress, let device):
            try addNeighbour(address, linkAddress: linkAddress, device: device)
        case .addFDBEntry(let address, let device): try addFDBEntry(address, port: device)
        case .addRoute(let spec): try addRoute(spec)
        case .deleteRoute(let prefix, let metric): try removeRoute(prefix, metric: metric)
        case .replaceRoute(let spec): try replaceRoute(spec)
        case .flushRoutes: flushRoutes()
        case .deleteAddress(let address, let length, let device): try removeAddress(address, prefixLength: length, device: device)
        case .deleteNeighbour(let address, let device): try removeNeighbour(address, device: device)
        case .deleteFilterRule(let hook, let number): try removeFilterRule(hook, number: number)
        case .addFilterRule(let spec): try addFilterRule(spec)
        case .listFilter: break  // a display request: `AppliedConfiguration.listsFilter`
        }
    }

    /// Checks every line against a model of the links, changing nothing.
    func validate(_ lines: [ConfigLine]) throws(ConfigApplyError) {
        enum Role { case plain, bond, bridge }
        var roles: [String: Role] = [:]
        var masters: [String: String] = [:]
        // Subnets (device name, subnet) and routes (prefix, metric) as the lines leave them.
        var subnets: [(String, IPv4Prefix, IPv4Address)] = addresses.all.compactMap { address in
            core.devices[address.ifindex].map { ($0.name, address.subnet, address.address) }
        }
        var routes = RouteModel(fib: fib)
        // Rules per hook as the lines leave them.
        var filterRules: [NetfilterHook: Int] = [:]
        // Neighbour entries by (address, device): those the table holds and cannot collect to
        // make room (Linux's forced `neigh_forced_gc` spares the same), and those lines add.
        // Read only when a line needs them: a control channel's route changes must not cost
        // a pass over every neighbour the stack has learned.
        let touchesNeighbours = lines.contains { line in
            switch line.command {
            case .addNeighbour, .deleteNeighbour: true
            default: false
            }
        }
        let neighbourEntries = touchesNeighbours ? neighbours.snapshot() : []
        var neighbourKeys = Set(neighbourEntries.map { "\($0.address) \($0.device)" })
        let collectable: [NeighbourState] = [.failed, .stale, .none]
        var heldNeighbours = neighbourEntries.count { !collectable.contains($0.state) || $0.pending > 0 }
        // Static FDB entries per bridge: the MACs each holds and how many more it can take.
        var fdbMACs: [String: Set<MACAddress>] = [:]
        var fdbRoom: [String: Int] = [:]
        for link in links {
            switch link.kind {
            case .bond: roles[link.name] = .bond
            case .bridge: roles[link.name] = .bridge
            default: roles[link.name] = .plain
            }
            masters[link.name] = link.master
        }
        func fail(_ line: ConfigLine, _ word: String, _ reason: ConfigApplyError.Invalidity) -> ConfigApplyError {
            ConfigApplyError(line: line.line, word: word, cause: .invalid(reason))
        }
        func existing(_ name: String, _ line: ConfigLine) throws(ConfigApplyError) -> Role {
            guard let role = roles[name] else { throw fail(line, name, .noSuchDevice) }
            return role
        }
        let running = core.registriesAreFrozen
        for line in lines {
            if running {
                switch line.command {
                case .addAFPacket, .addBond, .addBridge, .setMaster:
                    throw fail(line, line.words.first ?? "", .linksFixedWhileRunning)
                default: break
                }
            }
            switch line.command {
            case .addAFPacket(let name, _), .addBond(let name, _, _), .addBridge(let name):
                guard roles[name] == nil else { throw fail(line, name, .deviceExists) }
                if case .addBond = line.command { roles[name] = .bond }
                else if case .addBridge = line.command { roles[name] = .bridge }
                else { roles[name] = .plain }
            case .setMaster(let device, let master):
                let role = try existing(device, line)
                let masterRole = try existing(master, line)
                guard device != master else { throw fail(line, master, .ownMaster) }
                if let current = masters[device] { throw fail(line, device, .alreadyHasMaster(current)) }
                switch masterRole {
                case .plain: throw fail(line, master, .notAMaster)
                case .bond where role != .plain: throw fail(line, device, .notAPlainDevice)
                case .bridge where role == .bridge: throw fail(line, device, .bridgeAsPort)
                default: masters[device] = master
                }
            case .setState(let device, _):
                _ = try existing(device, line)
            case .setMTU(let device, let mtu):
                _ = try existing(device, line)
                if let limit = link(named: device)?.device.mtu, mtu > limit {
                    throw fail(line, "\(mtu)", .mtuTooLarge(device: device, limit: limit))
                }
            case .addAddress(let address, let length, let device):
                _ = try existing(device, line)
                if address.isZero || address.isMulticast || address.isBroadcast {
                    throw fail(line, "\(address)", .notUnicastAddress)
                }
                let subnet = IPv4Prefix(address: address, length: length)!
                subnets.append((device, subnet, address))
                routes.add(IPv4Prefix(address: address, length: 32)!, metric: 0)
                if length < 32 { routes.add(subnet, metric: 0) }
                if length < 31 { routes.add(IPv4Prefix(address: subnet.lastAddress, length: 32)!, metric: 0) }
            case .addRoute(let spec), .replaceRoute(let spec):
                let hops = spec.nexthops.isEmpty ? [NexthopSpec(gateway: spec.gateway, device: spec.device)] : spec.nexthops
                for hop in hops {
                    if let device = hop.device { _ = try existing(device, line) }
                    if let gateway = hop.gateway {
                        guard subnets.contains(where: { $0.1.contains(gateway) && $0.1.length < 32
                                                        && (hop.device == nil || $0.0 == hop.device) }) else {
                            throw fail(line, "\(gateway)", .gatewayNotConnected(device: hop.device))
                        }
                    }
                }
                if case .replaceRoute = line.command {
                    routes.add(spec.prefix, metric: spec.metric)
                } else if !routes.add(spec.prefix, metric: spec.metric) {
                    throw fail(line, "\(spec.prefix)", .routeExists(metric: spec.metric))
                }
            case .deleteRoute(let prefix, let metric):
                guard routes.remove(prefix, metric: metric) else {
                    throw fail(line, "\(prefix)", .noSuchRoute)
                }
            case .flushRoutes:
                routes.flush(keeping: Set(subnets.flatMap { Self.addressPrefixes($0.1, address: $0.2) }))
            case .deleteAddress(let address, let length, let device):
                _ = try existing(device, line)
                let subnet = IPv4Prefix(address: address, length: length)!
                guard let index = subnets.firstIndex(where: { $0.0 == device && $0.1 == subnet && $0.2 == address }) else {
                    throw fail(line, "\(address)", .noSuchAddress(device: device))
                }
                subnets.remove(at: index)
                routes.remove(IPv4Prefix(address: address, length: 32)!, metric: 0)
                if !subnets.contains(where: { $0.0 == device && $0.1 == subnet }) {
                    if length < 32 { routes.remove(subnet, metric: 0) }
                    if length < 31 { routes.remove(IPv4Prefix(address: subnet.lastAddress, length: 32)!, metric: 0) }
                }
            case .deleteNeighbour(let address, let device):
                _ = try existing(device, line)
                guard neighbourKeys.remove("\(address) \(device)") != nil else {
                    throw fail(line, "\(address)", .noSuchNeighbour(device: device))
                }
            case .addNeighbour(let address, let linkAddress, let device):
                _ = try existing(device, line)
                if address.isZero || address.isMulticast { throw fail(line, "\(address)", .notUnicastAddress) }
                if !linkAddress.isUnicast || linkAddress.isZero { throw fail(line, "\(linkAddress)", .notUnicastMAC) }
                if neighbourKeys.insert("\(address) \(device)").inserted {
                    heldNeighbours += 1
                    if heldNeighbours > neighbours.parameters.maximumEntries {
                        throw ConfigApplyError(line: line.line, word: "\(address)", cause: .stack(.neighbourTableFull))
                    }
                }
            case .addFilterRule(let spec):
                for device in [spec.inputDevice, spec.outputDevice].compactMap({ $0 }) { _ = try existing(device, line) }
                filterRules[spec.hook, default: filter.count(spec.hook)] += 1
            case .deleteFilterRule(let hook, let number):
                let count = filterRules[hook, default: filter.count(hook)]
                guard number <= count else { throw fail(line, "\(number)", .noSuchFilterRule(number: number, hook: hook, count: count)) }
                filterRules[hook] = count - 1
            case .listFilter:
                break
            case .addFDBEntry(let address, let device):
                _ = try existing(device, line)
                guard let master = masters[device], roles[master] == .bridge else {
                    throw fail(line, device, .notABridgePort(device))
                }
                if !address.isUnicast || address.isZero { throw fail(line, "\(address)", .notUnicastMAC) }
                if fdbRoom[master] == nil {
                    let fdb = (link(named: master)?.device as? BridgeDevice)?.fdb
                    fdbMACs[master] = Set(fdb?.entries(now: clock.now()).map(\.address) ?? [])
                    fdbRoom[master] = (fdb?.maximumEntries ?? BridgeFDB.defaultMaximumEntries) - (fdb?.count ?? 0)
                }
                if fdbMACs[master]!.insert(address).inserted {
                    fdbRoom[master]! -= 1
                    if fdbRoom[master]! < 0 {
                        throw ConfigApplyError(line: line.line, word: "\(address)", cause: .stack(.fdbFull(bridge: master)))
                    }
                }
            }
        }
    }
}

extension Stack {
    /// The prefixes of the routes an address brings (local /32, subnet, broadcast).
    static func addressPrefixes(_ subnet: IPv4Prefix, address: IPv4Address) -> [IPv4Prefix] {
        [IPv4Prefix(address: address, length: 32)!, subnet, IPv4Prefix(address: subnet.lastAddress, length: 32)!]
    }
}

/// The routing table as the lines of a configuration leave it, for validation: the FIB's routes
/// with the lines' changes laid over them, per prefix (a dictionary: checking a line costs the
/// same in an empty table and in one of a million routes).
struct RouteModel {
    let fib: FIB
    /// The metrics, ascending, of every prefix a line has touched.
    var changed: [IPv4Prefix: [UInt32]] = [:]
    /// After a `route flush`: only these prefixes (the addresses') keep their FIB routes.
    var flushedKeeping: Set<IPv4Prefix>?

    init(fib: FIB) { self.fib = fib }

    func metrics(of prefix: IPv4Prefix) -> [UInt32] {
        if let list = changed[prefix] { return list }
        if let kept = flushedKeeping, !kept.contains(prefix) { return [] }
        return fib.metrics(of: prefix)
    }

    /// `route flush`: every route goes but the addresses' (`prefixes`: their local, subnet and
    /// broadcast routes, metric 0) — also what earlier lines added.
    mutating func flush(keeping prefixes: Set<IPv4Prefix>) {
        changed = Dictionary(uniqueKeysWithValues: prefixes.map { ($0, [0]) })
        flushedKeeping = prefixes
    }

    /// Adds a route; false when one with that prefix and metric is there already.
    @discardableResult
    mutating func add(_ prefix: IPv4Prefix, metric: UInt32) -> Bool {
        var list = metrics(of: prefix)
        if list.contains(metric) { return false }
        list.insert(metric, at: list.firstIndex { $0 > metric } ?? list.endIndex)
        changed[prefix] = list
        return true
    }

    /// Removes the route with `metric`, or the best (lowest metric) when nil, as the FIB does;
    /// false when there is none.
    @discardableResult
    mutating func remove(_ prefix: IPv4Prefix, metric: UInt32?) -> Bool {
        var list = metrics(of: prefix)
        guard let index = metric.map({ m in list.firstIndex(of: m) }) ?? list.indices.first else { return false }
        list.remove(at: index)
        changed[prefix] = list
        return true
    }
}

/// What a configuration asks of the program showing the stack, beside what it changed.
public struct AppliedConfiguration: Sendable, Equatable {
    /// `filter list`: show the filter table with its counters as the stack runs.
    public var listsFilter = false

    public init() {}
}
