import DatapathCore
import DatapathWire
import Synchronization

/// Path MTUs learned per destination (Linux: `struct fib_nh_exception` — `fnhe_pmtu`,
/// `fnhe_expires` — hung off each next hop and written by `__ip_rt_update_pmtu` when an ICMP
/// "fragmentation needed" comes back, RFC 1191), with Linux's sysctls `route.mtu_expires`
/// (600 s) and `route.min_pmtu` (552).
///
/// `IPv4.routeOutput` applies an exception to what the stack sends to that destination (a
/// dst of its own with the lower MTU). Written by the ICMP receive path (any worker) and read
/// by workers: a lock, taken only while the table holds something — an empty table costs one
/// load. Bounded: past `maximumEntries` the entry closest to expiry makes room.
@safe package final class PMTUExceptions: @unchecked Sendable {
    public struct Parameters: Sendable {
        /// How long a learned MTU holds (Linux: `net.ipv4.route.mtu_expires`, 600 s).
        public var lifetime: Duration = .seconds(600)
        /// The lowest MTU taken from an ICMP message (Linux: `net.ipv4.route.min_pmtu`, 552).
        public var minimumMTU = 552
        /// Destinations remembered at most.
        public var maximumEntries = 4096

        public init() {}

        public static let linuxDefaults = Parameters()
    }

    struct Entry {
        var mtu: Int
        var expires: UInt64
    }

    public let parameters: Parameters
    let entries = Lock<[UInt32: Entry]>([:])
    /// How many entries there are, for the lock-free "none" check.
    let countWord: UnsafeMutablePointer<UInt64>

    public init(parameters: Parameters = .linuxDefaults) {
        self.parameters = parameters
        unsafe countWord = .allocate(capacity: 1)
        unsafe countWord.initialize(to: 0)
    }

    deinit { unsafe countWord.deallocate() }

    @inline(__always)
    public var isEmpty: Bool { unsafe SharedWord.load(countWord) == 0 }

    public var count: Int { unsafe Int(SharedWord.load(countWord)) }

    /// Learns that packets to `destination` must fit `mtu` (Linux: `__ip_rt_update_pmtu`): an
    /// MTU below the minimum is raised to it; one not below what the route (`routeMTU`) or an
    /// existing exception allows changes nothing but the expiry of a matching entry. Returns
    /// the MTU in force for the destination afterwards.
    @discardableResult
    public func update(_ destination: IPv4Address, mtu reported: Int, routeMTU: Int, now: UInt64) -> Int {
        let mtu = max(reported, parameters.minimumMTU)
        return entries.withLock { table in
            let key = destination.hostOrder
            let current = table[key].flatMap { $0.expires > now ? $0.mtu : nil } ?? routeMTU
            guard mtu <= current else { return current }
            if table[key] == nil && table.count >= parameters.maximumEntries,
               let victim = table.min(by: { $0.value.expires < $1.value.expires })?.key {
                table[victim] = nil
            }
            table[key] = Entry(mtu: mtu, expires: now &+ parameters.lifetime.nanoseconds)
            unsafe SharedWord.store(countWord, UInt64(table.count))
            return mtu
        }
    }

    /// The MTU learned for `destination`, nil when none (or it expired).
    public func mtu(for destination: IPv4Address, now: UInt64) -> Int? {
        if isEmpty { return nil }
        return entries.withLock { table in
            guard let entry = table[destination.hostOrder] else { return nil }
            return entry.expires > now ? entry.mtu : nil
        }
    }

    /// Forgets the expired entries (Linux ages them lazily on lookup and in `fnhe_remove_oldest`;
    /// here also from housekeeping). Returns how many went.
    @discardableResult
    public func expire(now: UInt64) -> Int {
        if isEmpty { return 0 }
        return entries.withLock { table in
            let before = table.count
            table = table.filter { $0.value.expires > now }
            unsafe SharedWord.store(countWord, UInt64(table.count))
            return before - table.count
        }
    }

    /// Forgets everything (Linux: `ip route flush cache`).
    public func flush() {
        entries.withLock { table in
            table.removeAll()
            unsafe SharedWord.store(countWord, 0)
        }
    }
}
