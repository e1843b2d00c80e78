import DatapathCore

/// What a dst does with a packet leaving through it (Linux: `dst->output`).
public enum DstOutput: UInt8, Sendable {
    /// `dst_discard_out`: no way out (local delivery and error routes).
    case discard = 0
    /// `ip_output`: NF POST_ROUTING, fragmentation, the neighbour.
    case ipOutput = 1
    /// `ip_mc_output`: a multicast or broadcast route whose packets also come back to this
    /// host — a group joined on the device with `IP_MULTICAST_LOOP`, or the limited broadcast —
    /// a copy of each through the loopback device, then `ip_output`.
    case mcOutput = 2
    // The xfrm issue adds the transform outputs (`xfrm4_output`), which end by moving the
    // packet to `child`; `dstOutput` then loops, as Linux's `dst_output` does over a bundle.
}

/// A routing decision as an object (Linux: `struct dst_entry` with the `struct rtable` around
/// it): what happens to a packet arriving for it (`input`) and leaving through it (`output`),
/// its path MTU, its output device and next hop with that hop's neighbour, and a `child`: an
/// xfrm bundle is a chain of dsts ending in a plain one, each a dst like any other.
///
/// Entries live in a worker's `DstTable` and are named by a `DstIndex` (what `skb.dst` holds)
/// or, by holders that keep one across batches, a `DstHandle` they revalidate (`dst_check`).
public struct DstEntry: Sendable, Equatable {
    public internal(set) var input: DstInput
    public internal(set) var output: DstOutput
    public internal(set) var flags: RouteFlags
    public internal(set) var mtu: UInt16
    public internal(set) var outputIfindex: UInt16
    /// The gateway (Linux: `rt_gw4`); 0 on a connected route, where each packet's next hop is
    /// its destination.
    public internal(set) var gateway: UInt32
    /// The gateway's neighbour as a raw `NeighbourHandle` (0: none, or found per destination).
    public internal(set) var neighbour: UInt64
    /// The next dst of a bundle (Linux: `xfrm_dst->child`); `.none` for a plain route.
    public internal(set) var child: DstIndex
    /// The FIB epoch the entry was made in: a newer one makes it obsolete (Linux: `rt_genid`).
    public internal(set) var epoch: UInt64
    /// The route slot it was made from and the FIB generation then: a change to that slot
    /// makes it obsolete too (`RouteSlots.changed`).
    public internal(set) var route: UInt32 = 0
    package var stamp: UInt32 = 0

    /// An entry with no way out: `input` only (local delivery, an error route).
    init(input: DstInput, flags: RouteFlags) {
        self.input = input
        output = .discard
        self.flags = flags
        mtu = 0
        outputIfindex = 0
        gateway = 0
        neighbour = 0
        child = .none
        epoch = 0
    }

    /// A route out of device `outputIfindex` (forwarded or originated: `ip_output`).
    init(forwardingTo outputIfindex: Int, gateway: UInt32, neighbour: NeighbourHandle?, mtu: Int, epoch: UInt64) {
        input = .forward
        output = .ipOutput
        flags = []
        self.mtu = UInt16(clamping: mtu)
        self.outputIfindex = UInt16(truncatingIfNeeded: outputIfindex)
        self.gateway = gateway
        self.neighbour = neighbour?.rawValue ?? 0
        child = .none
        self.epoch = epoch
    }
}

/// A dst in its worker's table, as `skb.dst` holds it; valid while the packet is in flight
/// in the batch that routed it (0: none).
@frozen
public struct DstIndex: Hashable, Sendable {
    public let rawValue: UInt32

    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let none = DstIndex(rawValue: 0)
}

/// A dst kept across batches (a connected socket's route, a cached bundle; Linux: a counted
/// `dst_entry *` with `dst_check`): the index with the slot's generation, and the FIB
/// generation the holder's route was decided at (what `IPv4.checkRoute` compares the route
/// slot's change marks with). `DstTable.check` says whether it still names a current route.
package struct DstHandle: Hashable, Sendable {
    public let index: DstIndex
    let generation: UInt32
    let stamp: UInt32
}
