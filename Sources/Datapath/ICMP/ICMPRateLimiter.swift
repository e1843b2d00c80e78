import DatapathCore
import DatapathWire

/// ICMP rate limits (Linux sysctls `icmp_ratelimit`, `icmp_ratemask`, `icmp_msgs_per_sec`,
/// `icmp_msgs_burst`), with Linux's defaults.
public struct ICMPRateLimitParameters: Sendable {
    /// Nanoseconds per message to one destination; its bucket holds six (`XRLIM_BURST_FACTOR`).
    public var perDestinationInterval: Duration = .seconds(1)
    /// Types limited: bit n for type n (default: destination unreachable, source quench, time
    /// exceeded, parameter problem). Fragmentation needed is never limited (path MTU).
    public var mask: UInt32 = 0x1818
    /// Messages per second over all destinations, and the burst allowed above it.
    public var messagesPerSecond: UInt64 = 1000
    public var burst: UInt64 = 50

    public init() {}

    public static let linuxDefaults = ICMPRateLimitParameters()
}

/// One worker's ICMP token buckets (Linux: `icmp_global_allow` and `icmpv4_xrlim_allow` →
/// `inet_peer_xrlim_allow`). Per destination, a bucket of up to six intervals' worth of
/// tokens that refills with elapsed time; a destination not seen before starts full. The
/// per-destination table is direct-mapped and fixed (1024 entries): a new destination takes
/// its slot's place, so memory stays bounded whatever the traffic. The global bucket is per
/// worker here (Linux: one per namespace).
@safe final class ICMPRateLimiter: @unchecked Sendable {
    enum Verdict { case allowed, limitedGlobal, limitedHost }

    struct Peer {
        var address: UInt32
        var tokens: UInt64
        var last: UInt64
        var used: Bool
    }

    static let slots = 1024
    let parameters: ICMPRateLimitParameters
    let peers: UnsafeMutablePointer<Peer>
    /// Global credit in messages × 10⁹ (nanosecond-exact refill).
    var credit: UInt64
    var creditStamp: UInt64

    init(parameters: ICMPRateLimitParameters, now: UInt64) {
        self.parameters = parameters
        unsafe peers = .allocate(capacity: ICMPRateLimiter.slots)
        unsafe peers.initialize(repeating: Peer(address: 0, tokens: 0, last: 0, used: false), count: ICMPRateLimiter.slots)
        credit = parameters.burst &* 1_000_000_000
        creditStamp = now
    }

    deinit { unsafe peers.deallocate() }

    /// Whether the type is subject to limiting at all (Linux: `icmpv4_mask_allow`).
    func isLimited(type: ICMPType, code: ICMPCode) -> Bool {
        let t = type.rawValue
        if t > 18 { return false }
        if t == ICMPType.destinationUnreachable.rawValue && code == ICMPCode.DestinationUnreachable.fragmentationNeeded {
            return false
        }
        return parameters.mask & (1 << UInt32(t)) != 0
    }

    /// Takes a token for a message of `type`/`code` to `destination` at `now`, or says which
    /// limit refused it. As in Linux, the global credit is spent before the destination's
    /// bucket is asked.
    func allow(type: ICMPType, code: ICMPCode, destination: IPv4Address, now: UInt64) -> Verdict {
        guard isLimited(type: type, code: code) else { return .allowed }
        // Global: icmp_msgs_per_sec with icmp_msgs_burst.
        let elapsed = min(now &- creditStamp, 1_000_000_000)
        creditStamp = now
        credit = min(credit &+ elapsed &* parameters.messagesPerSecond, parameters.burst &* 1_000_000_000)
        guard credit >= 1_000_000_000 else { return .limitedGlobal }
        credit &-= 1_000_000_000
        // Per destination: inet_peer_xrlim_allow.
        let interval = parameters.perDestinationInterval.nanoseconds
        let cap = 6 &* interval
        let address = destination.hostOrder
        let slot = unsafe peers + Int(truncatingIfNeeded: (address &* 0x9E37_79B1) >> 22) % ICMPRateLimiter.slots
        if unsafe !slot.pointee.used || slot.pointee.address != address {
            unsafe slot.pointee = Peer(address: address, tokens: cap, last: now, used: true)
        }
        var tokens = unsafe min(slot.pointee.tokens &+ (now &- slot.pointee.last), cap)
        unsafe slot.pointee.last = now
        guard tokens >= interval else {
            unsafe slot.pointee.tokens = tokens
            return .limitedHost
        }
        tokens &-= interval
        unsafe slot.pointee.tokens = tokens
        return .allowed
    }
}
