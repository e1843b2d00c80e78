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

    public init(prefix: IPv4Prefix, type: RouteType = .unicast, gateway: IPv4Address? = nil, ifindex: Int = 0,
                metric: UInt32 = 0, mtu: Int = 0) {
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
        if let gateway { line += " via \(gateway)" }
        if ifindex != 0 { line += " dev \(ifindex)" }
        if metric != 0 { line += " metric \(metric)" }
        if mtu != 0 { line += " mtu \(mtu)" }
        return line
    }
}
