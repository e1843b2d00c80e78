import DatapathWire

/// What a route does with a matching packet (Linux: `RTN_*` route types).
public enum RouteType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Forward to a gateway or straight onto a link (`RTN_UNICAST`).
    case unicast = 1
    /// Deliver locally: one of our addresses (`RTN_LOCAL`).
    case local = 2
    /// A broadcast address of a connected subnet (`RTN_BROADCAST`).
    case broadcast = 3
    /// Drop silently (`RTN_BLACKHOLE`).
    case blackhole = 6
    /// Drop with ICMP network unreachable (`RTN_UNREACHABLE`).
    case unreachable = 7
    /// Drop with ICMP administratively prohibited (`RTN_PROHIBIT`).
    case prohibit = 8

    /// As `ip route` prints it (nothing for unicast).
    public var description: String {
        switch self {
        case .unicast: "unicast"
        case .local: "local"
        case .broadcast: "broadcast"
        case .blackhole: "blackhole"
        case .unreachable: "unreachable"
        case .prohibit: "prohibit"
        }
    }
}

/// One next hop of a multipath route (Linux: one `fib_nh` of a `fib_info` with several, as
/// `ip route add P nexthop via G dev D weight W nexthop …` makes them).
public struct Nexthop: Hashable, Sendable {
    /// The gateway; nil for a next hop straight onto its link.
    public var gateway: IPv4Address?
    public var ifindex: Int
    /// Its share of the flows, 1–256 (`weight`; Linux's `nh_weight`).
    public var weight: Int

    public init(gateway: IPv4Address?, ifindex: Int, weight: Int = 1) {
        self.gateway = gateway
        self.ifindex = ifindex
        self.weight = weight
    }
}

/// One route in the FIB (Linux: a `fib_alias` with its `fib_info` and next hop).
public struct Route: Hashable, Sendable, CustomStringConvertible {
    public var prefix: IPv4Prefix
    public var type: RouteType
    /// The next hop's address; nil for routes straight onto a link.
    public var gateway: IPv4Address?
    /// The output device; 0 for routes without one (blackhole, unreachable, prohibit).
    public var ifindex: Int
    /// Lower wins among routes with the same prefix (Linux: `priority`).
    public var metric: UInt32
    /// Path MTU for this route; 0 means the device's MTU.
    public var mtu: Int
    /// A multipath route's next hops (two or more; `gateway` and `ifindex` are the first's);
    /// empty for a route with one. Flows are spread over them by hash, as Linux's
    /// `fib_select_multipath` does (hash-threshold, RFC 2992), in proportion to their weights.
    public var nexthops: [Nexthop]

    public init(prefix: IPv4Prefix, type: RouteType = .unicast, gateway: IPv4Address? = nil, ifindex: Int = 0,
                metric: UInt32 = 0, mtu: Int = 0, nexthops: [Nexthop] = []) {
        self.nexthops = nexthops
        self.prefix = prefix
        self.type = type
        self.gateway = gateway
        self.ifindex = ifindex
        self.metric = metric
        self.mtu = mtu
    }

    /// `198.19.0.0/16 via 198.18.2.2 dev 3 metric 10`, close to `ip route` (devices by index).
    public var description: String {
        var line = type == .unicast ? "\(prefix)" : "\(type) \(prefix)"
        if nexthops.isEmpty {
            if let gateway { line += " via \(gateway)" }
            if ifindex != 0 { line += " dev \(ifindex)" }
        }
        if metric != 0 { line += " metric \(metric)" }
        if mtu != 0 { line += " mtu \(mtu)" }
        for hop in nexthops {
            line += " nexthop"
            if let gateway = hop.gateway { line += " via \(gateway)" }
            line += " dev \(hop.ifindex) weight \(hop.weight)"
        }
        return line
    }
}
