import DatapathCore
import DatapathWire
import Synchronization

/// A bridge's forwarding database (Linux: `net/bridge/br_fdb.c`): MAC → port, learned from
/// source addresses and aged out after `ageingTime` (300 s), plus static and local entries.
///
/// Workers look up and refresh without a lock: each entry is one 64-bit word (MAC, port,
/// flags) read and written whole, and a last-seen word beside it. Only a new MAC takes the
/// lock. The table is open-addressed with a keyed hash and at most `maximumProbes` slots per
/// lookup, so a flood of random source MACs costs a bounded lookup and, when no slot is left,
/// an unlearned address (flooded, as Linux does past `max_learned`) — never a longer chain.
@safe public final class BridgeFDB: @unchecked Sendable {
    public static let defaultAgeingTime: Duration = .seconds(300)
    public static let maximumProbes = 32
    public let capacity: Int
    /// Entries kept at most (Linux: `max_learned`): half the slots, so chains stay short.
    public let maximumEntries: Int
    @usableFromInline let mask: Int
    @usableFromInline let multiplier: UInt64
    /// Two words per slot: the entry, then when it was last seen (ns).
    @usableFromInline let slots: UnsafeMutablePointer<UInt64>
    let writer = Lock<WriterState>(WriterState())
    let ageing: UnsafeMutablePointer<UInt64>

    struct WriterState {
        var count = 0
        var refused: UInt64 = 0
    }

    @usableFromInline static let macMask: UInt64 = 0xFFFF_FFFF_FFFF
    @usableFromInline static let portShift: UInt64 = 48
    @usableFromInline static let staticFlag: UInt64 = 1 << 58
    @usableFromInline static let localFlag: UInt64 = 1 << 59
    /// A removed entry; its MAC bits (broadcast) match no key ever looked up or learned.
    @usableFromInline static let tombstone: UInt64 = 1 << 62 | 0xFFFF_FFFF_FFFF

    /// The entries a table made with the default capacity takes.
    public static let defaultMaximumEntries = 16384 / 2

    public init(capacity: Int = 16384, ageingTime: Duration = BridgeFDB.defaultAgeingTime, seed: UInt64? = nil) {
        var size = 64
        while size < capacity { size <<= 1 }
        self.capacity = size
        self.maximumEntries = size / 2
        self.mask = size - 1
        self.multiplier = (seed ?? UInt64.random(in: 0 ... .max)) | 0x9E37_79B9_0000_0001
        unsafe slots = .allocate(capacity: size * 2)
        unsafe slots.initialize(repeating: 0, count: size * 2)
        unsafe ageing = .allocate(capacity: 1)
        unsafe ageing.initialize(to: ageingTime.nanoseconds)
    }

    deinit {
        unsafe slots.deallocate()
        unsafe ageing.deallocate()
    }

    /// Learned entries older than this are removed by `age` (Linux: `ageing_time`).
    public var ageingTime: Duration {
        get { unsafe .nanoseconds(SharedWord.load(ageing)) }
        set { unsafe SharedWord.store(ageing, newValue.nanoseconds) }
    }

    @inlinable @inline(__always)
    static func address(_ key: UInt64) -> MACAddress {
        var value = key & macMask
        return unsafe withUnsafeBytes(of: &value) { unsafe MACAddress(loadingFrom: $0.baseAddress!) }
    }

    @inlinable @inline(__always)
    func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* multiplier) >> 40) & mask }

    /// The entry word for `key` — a MAC in `MACAddress.wireWord` form — (0 when unknown): port in bits 48–57, flags above.
    @inlinable @inline(__always)
    public func lookup(_ key: UInt64) -> UInt64 {
        var index = home(key)
        for _ in 0..<BridgeFDB.maximumProbes {
            let word = unsafe SharedWord.loadRelaxed(slots + 2 &* index)
            if word == 0 { return 0 }
            if word & BridgeFDB.macMask == key { return word }
            index = (index &+ 1) & mask
        }
        return 0
    }

    @inlinable @inline(__always)
    static func port(_ word: UInt64) -> Int { Int(truncatingIfNeeded: (word >> portShift) & 0x3FF) }

    /// Records that `key` was seen on `port` at `now` (Linux: `br_fdb_update`): refreshes a
    /// known entry (at most once per millisecond, to keep the line clean), moves it if the
    /// station moved, and adds a new one under the lock. Static and local entries never move.
    @inlinable @inline(__always)
    public func learn(_ key: UInt64, port: Int, now: UInt64) {
        var index = home(key)
        for _ in 0..<BridgeFDB.maximumProbes {
            let word = unsafe SharedWord.loadRelaxed(slots + 2 &* index)
            if word == 0 { break }
            if word & BridgeFDB.macMask == key {
                if word & (BridgeFDB.staticFlag | BridgeFDB.localFlag) == 0 {
                    if BridgeFDB.port(word) != port {
                        // The station moved. Compare-and-swap, so that an entry aged out
                        // meanwhile stays removed (and the count stays true).
                        _ = unsafe SharedWord.compareExchange(slots + 2 &* index, expected: word,
                                                       desired: key | UInt64(port) << BridgeFDB.portShift)
                    }
                    let seen = unsafe slots + (2 &* index &+ 1)
                    if unsafe now &- SharedWord.loadRelaxed(seen) > 1_000_000 { unsafe SharedWord.storeRelaxed(seen, now) }
                }
                return
            }
            index = (index &+ 1) & mask
        }
        insert(key, word: key | UInt64(port) << BridgeFDB.portShift, now: now, replace: false)
    }

    /// Adds an entry under the lock (Linux: `fdb_create`); `replace` lets a static entry
    /// overwrite a learned one. Returns false when no slot is free within the probe limit.
    @usableFromInline @discardableResult
    func insert(_ key: UInt64, word: UInt64, now: UInt64, replace: Bool) -> Bool {
        writer.withLock { state in
            var index = home(key)
            var free: Int?
            for _ in 0..<BridgeFDB.maximumProbes {
                let current = unsafe slots[2 * index]
                if current & BridgeFDB.macMask == key && current != BridgeFDB.tombstone {
                    if replace || current & (BridgeFDB.staticFlag | BridgeFDB.localFlag) == 0 && word & BridgeFDB.staticFlag != 0 {
                        unsafe SharedWord.storeRelaxed(slots + 2 * index + 1, now)
                        unsafe SharedWord.store(slots + 2 * index, word)
                    }
                    return true
                }
                if free == nil && (current == 0 || current == BridgeFDB.tombstone) { free = index }
                if current == 0 { break }
                index = (index + 1) & mask
            }
            guard let slot = free, state.count < maximumEntries else {
                state.refused += 1
                return false
            }
            unsafe SharedWord.storeRelaxed(slots + 2 * slot + 1, now)
            unsafe SharedWord.store(slots + 2 * slot, word)
            state.count += 1
            return true
        }
    }

    /// Adds a static entry (Linux: `bridge fdb add MAC dev PORT master static`): never ages,
    /// never moves.
    @discardableResult
    public func addStatic(_ mac: MACAddress, port: Int, now: UInt64) -> Bool {
        let key = mac.wireWord
        return insert(key, word: key | UInt64(port) << BridgeFDB.portShift | BridgeFDB.staticFlag, now: now, replace: true)
    }

    /// Adds a local entry: frames to `mac` go up to the bridge's own stack (Linux: the
    /// permanent entries for the bridge's and its ports' addresses).
    @discardableResult
    public func addLocal(_ mac: MACAddress, port: Int, now: UInt64) -> Bool {
        let key = mac.wireWord
        return insert(key, word: key | UInt64(port) << BridgeFDB.portShift | BridgeFDB.localFlag, now: now, replace: true)
    }

    /// Removes learned entries not seen for `ageingTime` (Linux: `br_fdb_cleanup`); returns how
    /// many went.
    @discardableResult
    public func age(now: UInt64) -> Int {
        removeAll { word, seen in
            unsafe word & (BridgeFDB.staticFlag | BridgeFDB.localFlag) == 0 && now &- seen >= SharedWord.load(ageing)
        }
    }

    /// Removes the learned entries of `port` (Linux: `br_fdb_delete_by_port`, when a port
    /// goes down or leaves).
    @discardableResult
    public func flush(port: Int) -> Int {
        removeAll { word, _ in
            word & (BridgeFDB.staticFlag | BridgeFDB.localFlag) == 0 && BridgeFDB.port(word) == port
        }
    }

    func removeAll(where doomed: (UInt64, UInt64) -> Bool) -> Int {
        writer.withLock { state in
            var removed = 0
            for index in 0..<capacity {
                let word = unsafe slots[2 * index]
                guard word != 0, word != BridgeFDB.tombstone else { continue }
                if unsafe doomed(word, SharedWord.loadRelaxed(slots + 2 * index + 1)),
                   unsafe SharedWord.compareExchange(slots + 2 * index, expected: word, desired: BridgeFDB.tombstone) {
                    removed += 1
                }
            }
            state.count -= removed
            return removed
        }
    }

    /// Entries held now.
    public var count: Int { writer.withLock { $0.count } }
    /// New addresses not learned because the table was full.
    public var refused: UInt64 { writer.withLock { $0.refused } }

    /// One entry as `bridge fdb show` lists it.
    public struct Entry: Sendable, Equatable {
        public let address: MACAddress
        public let port: Int
        public let isStatic: Bool
        public let isLocal: Bool
        /// How long since it was last seen.
        public let age: Duration
    }

    public func entries(now: UInt64) -> [Entry] {
        writer.withLock { _ in
            (0..<capacity).compactMap { index -> Entry? in
                let word = unsafe slots[2 * index]
                guard word != 0, word != BridgeFDB.tombstone else { return nil }
                return unsafe Entry(address: BridgeFDB.address(word), port: BridgeFDB.port(word),
                             isStatic: word & BridgeFDB.staticFlag != 0, isLocal: word & BridgeFDB.localFlag != 0,
                             age: .nanoseconds(now &- SharedWord.loadRelaxed(slots + 2 * index + 1)))
            }
        }
    }

    /// The port `mac` is known on, if any.
    public func port(of mac: MACAddress) -> Int? {
        let word = lookup(mac.wireWord)
        return word == 0 ? nil : BridgeFDB.port(word)
    }
}
