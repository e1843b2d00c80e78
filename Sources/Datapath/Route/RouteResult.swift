import DatapathCore
import DatapathWire

/// What routing does with a packet that arrives (Linux: the `dst.input` function a route
/// lookup installs: `ip_local_deliver`, `ip_forward`, `ip_error`, `dst_discard`).
public enum DstInput: UInt8, Sendable {
    case none = 0
    /// `ip_local_deliver`: one of our addresses, or a broadcast we take.
    case localDeliver = 1
    /// `ip_forward`.
    case forward = 2
    /// `dst_discard`: a blackhole route, dropped silently.
    case blackhole = 3
    /// `ip_error` with `ENETUNREACH`: no route (ICMP net unreachable).
    case netUnreachable = 4
    /// `ip_error` with `EHOSTUNREACH`: an unreachable route (ICMP host unreachable).
    case hostUnreachable = 5
    /// `ip_error` with `EACCES`: a prohibit route (ICMP administratively prohibited).
    case prohibited = 6
    /// A martian source: multicast, limited broadcast, zero or loopback (dropped).
    case martianSource = 7
    /// A multicast group we have not joined (dropped; no multicast routing).
    case multicast = 8
    /// One of our own addresses as source (dropped, InAddrErrors).
    case localSource = 9
    /// A martian destination: zero or loopback (dropped, InAddrErrors).
    case martianDestination = 10
}

/// One routing decision as the route cache keeps it: the index of its `DstEntry` and, inline so
/// the fast path needs no second load, the hot fields — input action, output device, MTU, next
/// hop and its neighbour (for a connected route, the destination's own). 24 bytes; a route
/// cache entry holds one, and routing copies it into the skb (`apply`).
public struct RouteResult: Sendable {
    /// The next hop's neighbour entry as a `NeighbourHandle`'s raw value (0: none); nonzero only
    /// when `input` is `.forward` (routing's results for a connected route carry the
    /// destination's: only the route table's own entries forward without one). A handle holds
    /// no reference: an entry that left the table is simply not found.
    let neighbour: UInt64
    /// The next hop: the gateway, or the destination itself on a connected route.
    public let nexthop: UInt32
    public let outputIfindex: UInt16
    /// Path MTU: the route's, else the output device's.
    public let mtu: UInt16
    public let input: DstInput
    public let flags: RouteFlags
    /// The decision's entry in the worker's `DstTable`, as `apply` writes it into `skb.dst`.
    let dst: UInt32
    /// The route slot the decision was made from (0: none) and the FIB generation it was made
    /// at: a cached decision holds while the slot has not changed since (`RouteSlots`).
    var slot: UInt32 = 0
    var stamp: UInt32 = 0

    /// A decision without a next hop (local delivery, the error routes).
    public init(input: DstInput, flags: RouteFlags = []) {
        neighbour = 0
        nexthop = 0
        outputIfindex = 0
        mtu = 0
        self.input = input
        self.flags = flags
        dst = DstTable.staticIndex(input, flags: flags)
    }

    /// A forwarding decision through `neighbour` (nil: the destination's, found per packet),
    /// whose entry is `dst`.
    init(forwardTo neighbour: NeighbourHandle?, nexthop: UInt32, outputIfindex: Int, mtu: Int, flags: RouteFlags,
         dst: DstIndex) {
        self.neighbour = neighbour?.rawValue ?? 0
        self.nexthop = nexthop
        self.outputIfindex = UInt16(truncatingIfNeeded: outputIfindex)
        self.mtu = UInt16(clamping: mtu)
        self.input = .forward
        self.flags = flags
        self.dst = dst.rawValue
    }

    /// The same decision with `flags` added.
    func adding(_ more: RouteFlags) -> RouteResult {
        var result = RouteResult(forwardTo: neighbour == 0 ? nil : NeighbourHandle(rawValue: neighbour), nexthop: nexthop,
                                 outputIfindex: Int(outputIfindex), mtu: Int(mtu), flags: flags.union(more),
                                 dst: DstIndex(rawValue: dst))
        result.slot = slot
        result.stamp = stamp
        return result
    }

    /// The same decision marked as made from route slot `slot` at generation `stamp`.
    @inline(__always)
    func stamped(slot: UInt32, stamp: UInt32) -> RouteResult {
        var result = self
        result.slot = slot
        result.stamp = stamp
        return result
    }

    /// The same decision with another MTU and entry (a path-MTU exception's).
    func with(mtu: Int, dst: DstIndex) -> RouteResult {
        RouteResult(forwardTo: neighbour == 0 ? nil : NeighbourHandle(rawValue: neighbour), nexthop: nexthop,
                    outputIfindex: Int(outputIfindex), mtu: mtu, flags: flags, dst: dst).stamped(slot: slot, stamp: stamp)
    }

    /// Writes the decision into the skb: its dst entry's index, the output device, the
    /// neighbour's handle in control word 0 and the next hop in control word 1.
    @inline(__always)
    public func apply(to skb: SKB) {
        skb.dst = dst
        skb.outputIfindex = Int(outputIfindex)
        skb.control0 = neighbour
        skb.control1 = UInt64(nexthop)
    }
}

/// Reading back what `RouteResult.apply` wrote (the entry itself: `DstTable[skb.dst]`).
extension SKB {
    /// The raw handle of the neighbour routing chose (0: none).
    @inline(__always) var dstNeighbour: UInt64 { control0 }
    @inline(__always) var dstNexthop: UInt32 { UInt32(truncatingIfNeeded: control1) }
}

/// What else a routing decision says (Linux: the `RTCF_*` flags of `struct rtable`).
public struct RouteFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Delivered as a broadcast (`RTCF_BROADCAST`).
    public static let broadcast = RouteFlags(rawValue: 1)
    /// The destination is one of our addresses (`RTCF_LOCAL`).
    public static let local = RouteFlags(rawValue: 2)
    /// Delivered or sent as a multicast (`RTCF_MULTICAST`).
    public static let multicast = RouteFlags(rawValue: 4)
    /// A connected route: each packet's next hop is its destination (the route's own entry has
    /// no neighbour).
    static let connected = RouteFlags(rawValue: 8)
    /// A multipath route's entry in a worker's route table: the next hop is chosen per flow.
    static let multipath = RouteFlags(rawValue: 16)
    /// A multipath choice made with the packet's ports (`fib_multipath_hash_policy` 1): right
    /// for that flow only, so the route cache (keyed by addresses) does not keep it.
    static let perFlow = RouteFlags(rawValue: 32)
}
