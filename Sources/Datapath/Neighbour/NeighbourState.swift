/// A neighbour entry's state (Linux: `NUD_*` in `include/uapi/linux/neighbour.h`, same bits).
public struct NeighbourState: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Resolving: broadcast probes are out, packets wait in the pending queue.
    public static let incomplete = NeighbourState(rawValue: 0x01)
    /// Confirmed within the reachable time.
    public static let reachable = NeighbourState(rawValue: 0x02)
    /// Valid address, not recently confirmed; the next packet out starts verification.
    public static let stale = NeighbourState(rawValue: 0x04)
    /// Used while stale: waits `delayFirstProbeTime` for upper-layer confirmation.
    public static let delay = NeighbourState(rawValue: 0x08)
    /// Sending unicast probes to the known address.
    public static let probe = NeighbourState(rawValue: 0x10)
    /// Resolution failed; packets are dropped until the next attempt.
    public static let failed = NeighbourState(rawValue: 0x20)
    /// No resolution needed (point-to-point, loopback).
    public static let noARP = NeighbourState(rawValue: 0x40)
    /// Static: set by the administrator, never changed by ARP.
    public static let permanent = NeighbourState(rawValue: 0x80)
    public static let none = NeighbourState([])

    /// Whether any of `other`'s bits are set (Linux: `nud_state & NUD_…`).
    @inlinable public func intersects(_ other: NeighbourState) -> Bool { rawValue & other.rawValue != 0 }

    /// The address can be used without asking (Linux: `NUD_CONNECTED`).
    public static let connected: NeighbourState = [.permanent, .noARP, .reachable]
    /// The address is known (Linux: `NUD_VALID`).
    public static let valid: NeighbourState = [.permanent, .noARP, .reachable, .probe, .stale, .delay]
    /// States whose entry runs a timer (Linux: `NUD_IN_TIMER`).
    package static let inTimer: NeighbourState = [.incomplete, .reachable, .delay, .probe]

    /// As `ip neigh` prints it.
    public var description: String {
        switch self {
        case .incomplete: "INCOMPLETE"
        case .reachable: "REACHABLE"
        case .stale: "STALE"
        case .delay: "DELAY"
        case .probe: "PROBE"
        case .failed: "FAILED"
        case .noARP: "NOARP"
        case .permanent: "PERMANENT"
        case .none: "NONE"
        default: "0x" + String(rawValue, radix: 16)
        }
    }
}

/// The neighbour table's tunables, with Linux's defaults (`arp_tbl.parms`,
/// `/proc/sys/net/ipv4/neigh/default/*`). Times in nanoseconds.
public struct NeighbourParameters: Sendable, Equatable {
    /// Mean time an entry stays REACHABLE after confirmation; the actual time is random in
    /// [½, 1½) of it, as RFC 4861 §6.3.2 prescribes (`base_reachable_time_ms`, 30 s).
    public var baseReachableTime: Duration = .seconds(30)
    /// Between probes (`retrans_time_ms`, 1 s).
    public var retransmitTime: Duration = .seconds(1)
    /// In DELAY before the first unicast probe (`delay_first_probe_time`, 5 s).
    public var delayFirstProbeTime: Duration = .seconds(5)
    /// Broadcast probes while INCOMPLETE (`mcast_solicit`, 3).
    public var multicastProbes = 3
    /// Unicast probes while in PROBE (`ucast_solicit`, 3).
    public var unicastProbes = 3
    /// Bytes of packets (their true size) held per entry while resolving (`unres_qlen_bytes`,
    /// 212 992 — Linux's default since 3.3, which holds a 64 KiB datagram's fragments, where
    /// the older `unres_qlen` of 3 packets lost all but three of them).
    public var pendingQueueBytes = 212_992
    /// An ARP reply within this time of the last update does not replace the address
    /// (`locktime`, 1 s): the first answer wins when several hosts reply.
    public var lockTime: Duration = .seconds(1)
    /// Entries the table holds at most (`gc_thresh3`, 1024).
    public var maximumEntries = 1024
    /// FAILED and unused STALE entries older than this are collected (`gc_stale_time`, 60 s).
    public var staleTime: Duration = .seconds(60)

    public init() {}

    public static let linuxDefaults = NeighbourParameters()
}
