import DatapathCore
import DatapathWire
import Logging
import Synchronization

/// One datapath instance above Core (Linux: a `struct net`): its devices with their kinds and
/// masters, addresses, the neighbour table with ARP, bonds and bridges, and the periodic work
/// they need. Configured by the command language (`apply`) or this API; `start(on:)`
/// schedules its housekeeping on worker 0.
///
/// Threads: the links — `addDevice`, `addAFPacket`, `addBond`, `addBridge`, `setMaster` — and
/// `start(on:)` are registry changes, made before the `WorkerGroup` starts. Everything else —
/// `apply`, routes, addresses, neighbours, filter rules, FDB entries, `setUp`, `setMTU`,
/// `statistics` — may be called from any thread while workers run: each change is published
/// and workers take it at their next batch (README: "Which calls are safe when").
public final class Stack: @unchecked Sendable {
    public let core: NetCore
    public let clock: any DatapathClock
    public let workerCount: Int
    public let addresses: InterfaceAddresses
    public let fib = FIB()
    public let neighbours: NeighbourTable
    public let arp: ARPHandler
    public let netfilter: Netfilter
    public let ipv4: IPv4
    /// UDP: its socket table, receivers and `Udp:` counters (IP protocol 17).
    public let udp: UDP
    /// Raw IPv4 sockets (Linux: `raw_v4_hashinfo`, `raw_sendmsg`).
    package let raw: RawIP
    /// Multicast group membership and IGMP (Linux: `igmp.c`).
    public let igmp: IGMP
    /// The built-in filter table (iptables' `filter`).
    package let filter: FilterTable
    /// AF_PACKET ring settings for `link add … type afpacket` (queues default to one per worker).
    public var afpacketConfiguration: AFPacketDevice.Configuration
    public private(set) var links: [Link] = []
    let control = Lock<[@Sendable (Worker) -> Void]>([])
    /// The workers serving the stack (`start(on:)` or `attach`): sockets pick their home here.
    let attachedWorkers = Lock<[Worker]>([])
    /// Where control-plane events go (link up/down, MTU changes, a lost interface) — never
    /// anything per packet. Silent unless the user passes a logger.
    public let logger: Logger
    let linkMonitor = LinkMonitor()
    /// The subsystems, in the order they attached (`StackPart`): the shared rounds
    /// (housekeeping, release at shutdown) take each one's share in this order.
    package private(set) var parts: [any StackPart] = []

    /// A device as the stack knows it.
    public struct Link: Sendable {
        public let device: any NetDevice
        public let kind: Kind
        public internal(set) var master: String?
        public var name: String { device.name }
        /// The kernel interface under an AF_PACKET device.
        public var interface: String? {
            if case .afpacket(let interface) = kind { interface } else { nil }
        }
    }

    public enum Kind: Sendable, Equatable {
        /// A device given through the API (in-memory devices in tests and benchmarks).
        case device
        case afpacket(interface: String)
        case bond(BondMode, XmitHashPolicy)
        case bridge
    }

    public init(core: NetCore = NetCore(), workers: Int = 1, clock: any DatapathClock = MonotonicClock(),
                neighbourParameters: NeighbourParameters = .linuxDefaults,
                icmpRateLimits: ICMPRateLimitParameters = .linuxDefaults, routeCacheCapacity: Int = 4096,
                reassembly: ReassemblyParameters = .linuxDefaults,
                logger: Logger = Logger(label: "datapath", factory: { _ in SwiftLogNoOpLogHandler() })) {
        DropReason.registerStackReasons()
        self.core = core
        self.logger = logger
        self.clock = clock
        self.workerCount = max(1, workers)
        self.addresses = InterfaceAddresses(workers: workerCount)
        self.neighbours = NeighbourTable(core: core, addresses: addresses, clock: clock, parameters: neighbourParameters,
                                         workers: workerCount)
        self.arp = ARPHandler(neighbours: neighbours, workers: workerCount)
        self.netfilter = Netfilter(workers: workerCount)
        self.ipv4 = IPv4(core: core, fib: fib, neighbours: neighbours, addresses: addresses, netfilter: netfilter,
                         workers: workerCount, clock: clock, icmpRateLimits: icmpRateLimits,
                         routeCacheCapacity: routeCacheCapacity, reassembly: reassembly)
        var configuration = AFPacketDevice.Configuration()
        configuration.queues = workerCount
        self.afpacketConfiguration = configuration
        self.filter = FilterTable(ipv4: ipv4, netfilter: netfilter, workers: workerCount)
        self.udp = UDP(ipv4: ipv4, workers: workerCount)
        self.raw = RawIP(ipv4: ipv4, workers: workerCount)
        self.igmp = IGMP(ipv4: ipv4, core: core, fib: fib)
        parts = [fib, neighbours, arp, ipv4, raw, udp, igmp]
        for part in parts { part.attach(to: self) }
        // lo (Linux's ifindex 1): what the stack sends to its own addresses comes back on it.
        let loopback = LoopbackDevice(queues: workerCount)
        unsafe ipv4.loopbackIfindex = (try? add(loopback, kind: .device)) ?? 0
    }

    /// The core's registries hold the stack's handlers and devices, which hold the core: the
    /// stack lets them go when it goes (its workers must have stopped by then, as they run
    /// its code).
    deinit { core.releaseRegistries() }

    // MARK: links

    public func link(named name: String) -> Link? { links.first { $0.name == name } }

    /// The devices with receive queues of their own, for `WorkerGroup.pollAllQueues`.
    public var receivingDevices: [any NetDevice] {
        links.compactMap { link in
            switch link.kind {
            case .bond, .bridge: nil
            case .device, .afpacket: link.device
            }
        }
    }

    /// Registers a device (Linux: `register_netdevice`).
    @discardableResult
    public func addDevice(_ device: any NetDevice) throws(StackError) -> Int {
        try add(device, kind: .device)
    }

    @discardableResult
    func add(_ device: any NetDevice, kind: Kind) throws(StackError) -> Int {
        guard link(named: device.name) == nil else { throw .deviceExists(device.name) }
        let ifindex = core.register(device)
        links.append(Link(device: device, kind: kind, master: nil))
        switch kind {
        case .device, .afpacket: linkMonitor.watch(device)
        case .bond, .bridge: break
        }
        return ifindex
    }

    /// Opens a kernel interface through AF_PACKET as device `name`.
    @discardableResult
    public func addAFPacket(_ name: String, interface: String) throws -> AFPacketDevice {
        let device = try AFPacketDevice(interface: interface, name: name, configuration: afpacketConfiguration)
        try add(device, kind: .afpacket(interface: interface))
        return device
    }

    @discardableResult
    public func addBond(_ name: String, mode: BondMode, hashPolicy: XmitHashPolicy = .layer2) throws(StackError) -> BondDevice {
        let bond = BondDevice(name: name, mode: mode, hashPolicy: hashPolicy, core: core, workers: workerCount,
                              addresses: addresses)
        try add(bond, kind: .bond(mode, hashPolicy))
        return bond
    }

    @discardableResult
    public func addBridge(_ name: String) throws(StackError) -> BridgeDevice {
        let bridge = BridgeDevice(name: name, core: core, workers: workerCount)
        try add(bridge, kind: .bridge)
        return bridge
    }

    /// Makes `name` a slave of a bond or a port of a bridge (Linux: `ip link set DEV master M`).
    public func setMaster(_ name: String, master: String) throws(StackError) {
        guard let index = links.firstIndex(where: { $0.name == name }) else { throw .noSuchDevice(name) }
        guard let upper = link(named: master) else { throw .noSuchDevice(master) }
        if let current = links[index].master { throw .alreadyHasMaster(device: name, master: current) }
        guard name != master else { throw .ownMaster(name) }
        let device = links[index].device
        switch upper.device {
        case let bond as BondDevice:
            let before = bond.macAddress
            bond.addSlave(device)
            if bond.macAddress != before { neighbours.deviceAddressChanged(bond) }
        case let bridge as BridgeDevice: bridge.addPort(device, now: clock.now())
        default: throw .notAMaster(master)
        }
        links[index].master = master
    }

    /// Sets a device administratively up or down (Linux: `ip link set DEV up|down`).
    public func setUp(_ name: String, _ up: Bool) throws(StackError) {
        guard let link = link(named: name) else { throw .noSuchDevice(name) }
        core.setAdminUp(up, ifindex: link.device.ifindex)
        fib.invalidateCaches()
    }

    /// Sets a device's MTU (Linux: `ip link set DEV mtu N`), at most what the device carries.
    public func setMTU(_ name: String, _ mtu: Int) throws(StackError) {
        guard let link = link(named: name) else { throw .noSuchDevice(name) }
        guard mtu >= 68 && mtu <= link.device.mtu else {
            throw .mtuOutOfRange(device: name, mtu: mtu, range: 68...link.device.mtu)
        }
        core.setMTU(mtu, ifindex: link.device.ifindex)
        linkMonitor.configure(mtu: mtu, ifindex: link.device.ifindex)
        fib.invalidateCaches()
    }

    /// Adds an IPv4 address to a device (Linux: `ip addr add` → `fib_add_ifaddr`): with it a
    /// local route for the address, the connected route for its subnet, and the subnet's
    /// broadcast route (below /31), each unless already there.
    public func addAddress(_ address: IPv4Address, prefixLength: Int, device name: String) throws(StackError) {
        guard let link = link(named: name) else { throw .noSuchDevice(name) }
        let ifindex = link.device.ifindex
        let entry = InterfaceAddress(address: address, prefixLength: prefixLength, ifindex: ifindex)
        addresses.add(entry)
        var routes = [Route(prefix: IPv4Prefix(address: address, length: 32)!, type: .local, ifindex: ifindex)]
        if prefixLength < 32 { routes.append(Route(prefix: entry.subnet, ifindex: ifindex)) }
        if prefixLength < 31 {
            routes.append(Route(prefix: IPv4Prefix(address: entry.subnet.lastAddress, length: 32)!, type: .broadcast,
                                ifindex: ifindex))
        }
        var added: [Route] = []
        for route in routes {
            do { try fib.add(route); added.append(route) } catch {
                // A route already there stays; a table without room for the address's own
                // routes refuses the address.
                if case .exists = error { continue }
                fib.removeAll { added.contains($0) }
                _ = addresses.remove(entry)
                throw .route(error)
            }
        }
        // Source checks and source choices depend on the addresses: every cached decision goes.
        fib.invalidateCaches()
    }

    /// Adds a route (Linux: `ip route add`). A gateway must lie in a connected subnet — of the
    /// named device, when one is named — which also gives the device when none is named.
    public func addRoute(_ spec: RouteSpec) throws(StackError) {
        try fibAdd(resolve(spec))
    }

    /// Replaces the route with the spec's prefix and metric, or adds it (Linux: `ip route
    /// replace`).
    public func replaceRoute(_ spec: RouteSpec) throws(StackError) {
        let route = try resolve(spec)
        do { try fib.replace(route) } catch { throw .route(error) }
    }

    /// Removes every route but those the addresses bring — local, broadcast, and the connected
    /// route of each address's subnet on its device — (Linux: `ip route flush` of what was
    /// added); returns how many went.
    @discardableResult
    public func flushRoutes() -> Int {
        let connected = Set(addresses.all.map { "\($0.subnet)@\($0.ifindex)" })
        return fib.removeAll { route in
            switch route.type {
            case .local, .broadcast: return false
            case .unicast:
                return route.gateway != nil || route.metric != 0 || !connected.contains("\(route.prefix)@\(route.ifindex)")
            default: return true
            }
        }
    }

    /// Removes an address and the routes it brought (Linux: `ip addr del` → `fib_del_ifaddr`):
    /// its local route, and — when no other address of the device is in the subnet — the
    /// subnet's connected and broadcast routes.
    public func removeAddress(_ address: IPv4Address, prefixLength: Int, device name: String) throws(StackError) {
        guard let link = link(named: name) else { throw .noSuchDevice(name) }
        let ifindex = link.device.ifindex
        let entry = InterfaceAddress(address: address, prefixLength: prefixLength, ifindex: ifindex)
        guard addresses.remove(entry) else { throw .noSuchAddress(address, device: name) }
        let subnetInUse = addresses.all.contains { $0.ifindex == ifindex && $0.subnet == entry.subnet }
        let broadcast = IPv4Prefix(address: entry.subnet.lastAddress, length: 32)!
        fib.removeAll { route in
            guard route.ifindex == ifindex else { return false }
            if route.type == .local { return route.prefix == IPv4Prefix(address: address, length: 32)! }
            guard !subnetInUse else { return false }
            return (route.type == .broadcast && route.prefix == broadcast)
                || (route.type == .unicast && route.gateway == nil && route.prefix == entry.subnet && prefixLength < 32)
        }
        fib.invalidateCaches()
    }

    /// Removes a neighbour entry (Linux: `ip neigh del`).
    public func removeNeighbour(_ address: IPv4Address, device name: String) throws(StackError) {
        guard let link = link(named: name) else { throw .noSuchDevice(name) }
        guard neighbours.remove(address, ifindex: link.device.ifindex) else {
            throw .noSuchNeighbour(address, device: name)
        }
    }

    /// Removes a route (Linux: `ip route del PREFIX [metric N]`).
    public func removeRoute(_ prefix: IPv4Prefix, metric: UInt32? = nil) throws(StackError) {
        do { try fib.remove(prefix, metric: metric) } catch { throw .route(error) }
    }

    func fibAdd(_ route: Route) throws(StackError) {
        do { try fib.add(route) } catch { throw .route(error) }
    }

    /// The route a spec names, with device and gateway checked against the links and subnets.
    func resolve(_ spec: RouteSpec) throws(StackError) -> Route {
        guard spec.type == .unicast else { return Route(prefix: spec.prefix, type: spec.type, metric: spec.metric) }
        if !spec.nexthops.isEmpty {
            var hops: [Nexthop] = []
            for hop in spec.nexthops {
                hops.append(Nexthop(gateway: hop.gateway, ifindex: try resolveNexthop(gateway: hop.gateway, device: hop.device),
                                    weight: hop.weight))
            }
            return Route(prefix: spec.prefix, gateway: hops[0].gateway, ifindex: hops[0].ifindex, metric: spec.metric,
                         mtu: spec.mtu, nexthops: hops)
        }
        return Route(prefix: spec.prefix, gateway: spec.gateway,
                     ifindex: try resolveNexthop(gateway: spec.gateway, device: spec.device), metric: spec.metric,
                     mtu: spec.mtu)
    }

    /// A next hop's output device: the one named, or the one whose connected subnet holds the
    /// gateway (Linux: `fib_check_nh`).
    func resolveNexthop(gateway: IPv4Address?, device: String?) throws(StackError) -> Int {
        var ifindex: Int?
        if let name = device {
            guard let link = link(named: name) else { throw .noSuchDevice(name) }
            ifindex = link.device.ifindex
        }
        if let gateway {
            guard let subnet = addresses.all.first(where: {
                $0.subnet.contains(gateway) && $0.prefixLength < 32 && (ifindex == nil || $0.ifindex == ifindex)
            }) else {
                throw .gatewayNotConnected(gateway, device: device)
            }
            ifindex = subnet.ifindex
        }
        return ifindex ?? 0
    }

    /// Appends a filter rule (Linux: `iptables -A CHAIN …`), its devices resolved by name.
    public func addFilterRule(_ spec: FilterRuleSpec) throws(StackError) {
        func ifindex(_ name: String?) throws(StackError) -> Int {
            guard let name else { return 0 }
            guard let link = link(named: name) else { throw .noSuchDevice(name) }
            return link.device.ifindex
        }
        filter.append(spec, inputIfindex: try ifindex(spec.inputDevice), outputIfindex: try ifindex(spec.outputDevice))
    }

    /// Removes rule `number` (1-based, as `iptables -D CHAIN N` counts) of `hook`.
    public func removeFilterRule(_ hook: NetfilterHook, number: Int) throws(StackError) {
        guard filter.remove(hook, number: number) else { throw .noSuchFilterRule(hook, number: number) }
    }

    /// Adds a permanent neighbour (Linux: `ip neigh add … lladdr … dev … nud permanent`).
    public func addNeighbour(_ address: IPv4Address, linkAddress: MACAddress, device name: String) throws(StackError) {
        guard let link = link(named: name) else { throw .noSuchDevice(name) }
        guard neighbours.addStatic(address, linkAddress: linkAddress, device: link.device) != nil else {
            throw .neighbourTableFull
        }
    }

    /// Adds a static FDB entry on a bridge port (Linux: `bridge fdb add MAC dev PORT master static`).
    public func addFDBEntry(_ address: MACAddress, port name: String) throws(StackError) {
        guard let link = link(named: name) else { throw .noSuchDevice(name) }
        guard let masterName = link.master, let bridge = self.link(named: masterName)?.device as? BridgeDevice,
              let port = bridge.port(of: link.device) else {
            throw .notABridgePort(name)
        }
        guard bridge.fdb.addStatic(address, port: port.index, now: clock.now()) else {
            throw .fdbFull(bridge: bridge.name)
        }
    }

    public var bonds: [BondDevice] { links.compactMap { $0.device as? BondDevice } }
    public var bridges: [BridgeDevice] { links.compactMap { $0.device as? BridgeDevice } }
}

/// A configuration request the stack cannot carry out: what was asked and where it failed.
public enum StackError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No device of that name.
    case noSuchDevice(String)
    /// A device of that name exists already.
    case deviceExists(String)
    /// The device is a bond's slave or a bridge's port already.
    case alreadyHasMaster(device: String, master: String)
    case ownMaster(String)
    /// `master` names a device that is neither a bond nor a bridge.
    case notAMaster(String)
    case mtuOutOfRange(device: String, mtu: Int, range: ClosedRange<Int>)
    /// A route's gateway lies in no connected subnet (of the named device, when one is named).
    case gatewayNotConnected(IPv4Address, device: String?)
    case neighbourTableFull
    case noSuchAddress(IPv4Address, device: String)
    case noSuchNeighbour(IPv4Address, device: String)
    case noSuchFilterRule(NetfilterHook, number: Int)
    case notABridgePort(String)
    case fdbFull(bridge: String)
    /// The FIB refused the change.
    case route(RouteError)

    public var description: String {
        switch self {
        case .noSuchDevice(let name): "no such device: \(name)"
        case .deviceExists(let name): "device \(name) already exists"
        case .alreadyHasMaster(let device, let master): "\(device) already has master \(master)"
        case .ownMaster(let name): "\(name) cannot be its own master"
        case .notAMaster(let name): "\(name) is not a bond or a bridge"
        case .mtuOutOfRange(let device, let mtu, let range):
            "mtu \(mtu) out of range for \(device) (\(range.lowerBound)...\(range.upperBound))"
        case .gatewayNotConnected(let gateway, let device):
            "gateway \(gateway) is not in a connected subnet\(device.map { " of \($0)" } ?? "")"
        case .neighbourTableFull: "neighbour table full"
        case .noSuchAddress(let address, let device): "no address \(address) on \(device)"
        case .noSuchNeighbour(let address, let device): "no neighbour \(address) on \(device)"
        case .noSuchFilterRule(let hook, let number): "no rule \(number) in \(hook)"
        case .notABridgePort(let name): "\(name) is not a bridge port"
        case .fdbFull(let bridge): "FDB of \(bridge) is full"
        case .route(let error): error.description
        }
    }
}
