import DatapathCore
import DatapathWire

extension Stack {
    /// Parses and applies a configuration, all or nothing (DESIGN.md §7): every line is checked
    /// against the devices that exist and those the configuration creates, and AF_PACKET devices
    /// are opened, before anything changes. Throws `ConfigError` (syntax) or `ConfigApplyError`
    /// (meaning: unknown device, wrong kind, interface that cannot be opened). Returns what the
    /// configuration asks of whoever shows the stack (`filter list`), which is not stack state.
    @discardableResult
    public func apply(_ text: String) throws -> AppliedConfiguration {
        let lines = try ConfigParser.parse(text)
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
        for line in lines {
            if case .listFilter = line.command { applied.listsFilter = true }
            do {
                try execute(line.command, afpacket: opened[line.line])
            } catch {
                throw ConfigApplyError(line: line.line, word: line.words.first ?? "", cause: .stack(error))
            }
        }
        if !lines.isEmpty {
            logger.notice("configuration applied: \(lines.count) command\(lines.count == 1 ? "" : "s"), \(fib.routes.count) routes")
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
        var subnets: [(String, IPv4Prefix)] = addresses.all.compactMap { address in
            core.devices[address.ifindex].map { ($0.name, address.subnet) }
        }
        var routes: [(IPv4Prefix, UInt32)] = fib.routes.map { ($0.prefix, $0.metric) }
        for link in links {
            switch link.kind {
            case .bond: roles[link.name] = .bond
            case .bridge: roles[link.name] = .bridge
            default: roles[link.name] = .plain
            }
            masters[link.name] = link.master
        }
        func fail(_ line: ConfigLine, _ word: String, _ reason: String) -> ConfigApplyError {
            ConfigApplyError(line: line.line, word: word, cause: .invalid(reason))
        }
        func existing(_ name: String, _ line: ConfigLine) throws(ConfigApplyError) -> Role {
            guard let role = roles[name] else { throw fail(line, name, "no such device (add it with 'link add' first)") }
            return role
        }
        for line in lines {
            switch line.command {
            case .addAFPacket(let name, _), .addBond(let name, _, _), .addBridge(let name):
                guard roles[name] == nil else { throw fail(line, name, "device already exists") }
                if case .addBond = line.command { roles[name] = .bond }
                else if case .addBridge = line.command { roles[name] = .bridge }
                else { roles[name] = .plain }
            case .setMaster(let device, let master):
                let role = try existing(device, line)
                let masterRole = try existing(master, line)
                guard device != master else { throw fail(line, master, "a device cannot be its own master") }
                if let current = masters[device] { throw fail(line, device, "already has master \(current)") }
                switch masterRole {
                case .plain: throw fail(line, master, "not a bond or a bridge")
                case .bond where role != .plain: throw fail(line, device, "only plain devices can be bond slaves")
                case .bridge where role == .bridge: throw fail(line, device, "a bridge cannot be a bridge port")
                default: masters[device] = master
                }
            case .setState(let device, _):
                _ = try existing(device, line)
            case .setMTU(let device, let mtu):
                _ = try existing(device, line)
                if let limit = link(named: device)?.device.mtu, mtu > limit {
                    throw fail(line, "\(mtu)", "larger than \(device) can carry (\(limit))")
                }
            case .addAddress(let address, let length, let device):
                _ = try existing(device, line)
                if address.isZero || address.isMulticast || address.isBroadcast {
                    throw fail(line, "\(address)", "not a unicast address")
                }
                let subnet = IPv4Prefix(address: address, length: length)!
                subnets.append((device, subnet))
                routes.append((IPv4Prefix(address: address, length: 32)!, 0))
                if length < 32 { routes.append((subnet, 0)) }
                if length < 31 { routes.append((IPv4Prefix(address: subnet.lastAddress, length: 32)!, 0)) }
            case .addRoute(let spec):
                if let device = spec.device { _ = try existing(device, line) }
                if let gateway = spec.gateway {
                    guard subnets.contains(where: { $0.1.contains(gateway) && $0.1.length < 32
                                                    && (spec.device == nil || $0.0 == spec.device) }) else {
                        throw fail(line, "\(gateway)", "gateway not in a connected subnet\(spec.device.map { " of \($0)" } ?? "") (add the address first)")
                    }
                }
                if routes.contains(where: { $0.0 == spec.prefix && $0.1 == spec.metric }) {
                    throw fail(line, "\(spec.prefix)", "route exists (metric \(spec.metric))")
                }
                routes.append((spec.prefix, spec.metric))
            case .deleteRoute(let prefix, let metric):
                guard let index = routes.firstIndex(where: { $0.0 == prefix && (metric == nil || $0.1 == metric) }) else {
                    throw fail(line, "\(prefix)", "no such route")
                }
                routes.remove(at: index)
            case .addNeighbour(let address, let linkAddress, let device):
                _ = try existing(device, line)
                if address.isZero || address.isMulticast { throw fail(line, "\(address)", "not a unicast address") }
                if !linkAddress.isUnicast || linkAddress.isZero { throw fail(line, "\(linkAddress)", "not a unicast MAC") }
            case .addFilterRule(let spec):
                for device in [spec.inputDevice, spec.outputDevice].compactMap({ $0 }) { _ = try existing(device, line) }
            case .listFilter:
                break
            case .addFDBEntry(let address, let device):
                _ = try existing(device, line)
                guard let master = masters[device], roles[master] == .bridge else {
                    throw fail(line, device, "not a bridge port (use 'link set \(device) master BRIDGE' first)")
                }
                if !address.isUnicast || address.isZero { throw fail(line, "\(address)", "not a unicast MAC") }
            }
        }
    }
}

/// What a configuration asks of the program showing the stack, beside what it changed.
public struct AppliedConfiguration: Sendable, Equatable {
    /// `filter list`: show the filter table with its counters as the stack runs.
    public var listsFilter = false

    public init() {}
}
