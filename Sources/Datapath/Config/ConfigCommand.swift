import DatapathWire

/// One parsed configuration command (DESIGN.md §7: iproute2 syntax).
public enum ConfigCommand: Equatable, Sendable {
    /// `link add NAME type afpacket dev INTERFACE`
    case addAFPacket(name: String, interface: String)
    /// `link add NAME type bond mode MODE [xmit_hash_policy POLICY]`
    case addBond(name: String, mode: BondMode, hashPolicy: XmitHashPolicy)
    /// `link add NAME type bridge`
    case addBridge(name: String)
    /// `link set DEV master MASTER`
    case setMaster(device: String, master: String)
    /// `link set DEV up|down`
    case setState(device: String, up: Bool)
    /// `link set DEV mtu N`
    case setMTU(device: String, mtu: Int)
    /// `addr add A.B.C.D/LEN dev DEV`
    case addAddress(address: IPv4Address, prefixLength: Int, device: String)
    /// `neigh add A.B.C.D lladdr MAC dev DEV [nud permanent]`
    case addNeighbour(address: IPv4Address, linkAddress: MACAddress, device: String)
    /// `bridge fdb add MAC dev PORT [master] [static]`
    case addFDBEntry(address: MACAddress, device: String)
    /// `route add [TYPE] PREFIX [via GW] [dev DEV] [metric N] [mtu N]`
    case addRoute(RouteSpec)
    /// `route del PREFIX [metric N]`
    case deleteRoute(prefix: IPv4Prefix, metric: UInt32?)
    /// `route replace …` (as `route add`): the route with that prefix and metric is replaced,
    /// or added when there is none (Linux: NLM_F_CREATE | NLM_F_REPLACE).
    case replaceRoute(RouteSpec)
    /// `route flush`: every route but those the addresses bring (local, broadcast and
    /// connected subnet routes), as `ip route flush` of the routes a daemon or a user added.
    case flushRoutes
    /// `addr del A.B.C.D/LEN dev DEV`, with the routes it brought.
    case deleteAddress(address: IPv4Address, prefixLength: Int, device: String)
    /// `neigh del A.B.C.D dev DEV`
    case deleteNeighbour(address: IPv4Address, device: String)
    /// `filter add HOOK [iif DEV] [oif DEV] [src PREFIX] [dst PREFIX] [proto P] [sport N[-M]]
    /// [dport N[-M]] [icmp-type T] [fragment] accept|drop|reject [with CODE]`
    case addFilterRule(FilterRuleSpec)
    /// `filter del input|forward|output N`: rule N (from 1) of the hook.
    case deleteFilterRule(hook: NetfilterHook, number: Int)
    /// `filter list`: show the filter table with its counters as the datapath runs.
    case listFilter
}

/// A route as the command language gives it: devices by name.
public struct RouteSpec: Equatable, Sendable {
    public var prefix: IPv4Prefix
    public var type: RouteType = .unicast
    public var gateway: IPv4Address?
    public var device: String?
    public var metric: UInt32 = 0
    public var mtu: Int = 0
    /// A multipath route's next hops (`nexthop via G dev D weight W`, two or more).
    public var nexthops: [NexthopSpec] = []

    public init(prefix: IPv4Prefix, type: RouteType = .unicast, gateway: IPv4Address? = nil, device: String? = nil,
                metric: UInt32 = 0, mtu: Int = 0, nexthops: [NexthopSpec] = []) {
        self.nexthops = nexthops
        self.prefix = prefix
        self.type = type
        self.gateway = gateway
        self.device = device
        self.metric = metric
        self.mtu = mtu
    }
}

/// One next hop of a multipath route as the command language gives it.
public struct NexthopSpec: Equatable, Sendable {
    public var gateway: IPv4Address?
    public var device: String?
    public var weight: Int = 1

    public init(gateway: IPv4Address? = nil, device: String? = nil, weight: Int = 1) {
        self.gateway = gateway
        self.device = device
        self.weight = weight
    }
}

/// A command and the line it came from.
public struct ConfigLine: Equatable, Sendable {
    public let line: Int
    public let command: ConfigCommand
    /// The words of the line, for error messages while applying.
    public let words: [String]
}
