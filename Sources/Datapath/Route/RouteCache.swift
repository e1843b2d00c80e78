import DatapathCore
import DatapathWire

/// One worker's flow-hashed route cache (DESIGN.md §6; Linux had one until 3.6 — `rt_hash_table`
/// — and keeps the idea per next hop in `nh_rth_input`): set-associative, fixed size, keyed on
/// (destination, source, TOS, input device, mark) with a hash keyed by a random per-process
/// secret. It never grows: a miss takes a way of the set — an empty or stale one; in a full
/// set, a way is given up only on one miss in `replacementInterval` (bimodal insertion, as
/// Qureshi et al.'s BIP: the ways of a set that more flows share than it holds keep serving
/// those they hold instead of all of them missing in turn, and a flood of new destinations
/// evicts established flows `replacementInterval` times more slowly). Every entry carries the
/// epoch it was made in; `FIB.epoch` moving on — a route, address, link or neighbour change —
/// invalidates them all in O(1).
///
/// Single-threaded: only its worker touches it. Entries hold neighbours by handle, not by
/// reference, so evicting or flushing one releases nothing.
@safe public final class RouteCache: @unchecked Sendable {
    /// Entries (64 bytes each): key0 @0 (`key0(destination:source:)`), key1 @8 (mark << 32 |
    /// TOS << 16 | iif), validity @16 (`validity(epoch:generation:)`, 0 = empty), result @24 (`RouteResult`,
    /// 32 bytes).
    let entries: UnsafeMutableRawPointer
    let memory: LargeMemory
    public let capacity: Int
    /// 64 − log2(sets): the set index is a hash's top bits.
    let shift: UInt64
    static let ways = 4
    /// A full set gives up a way on one miss in this many (a power of two).
    static let replacementInterval: UInt64 = 32
    /// The hash's secret: two random odd multipliers.
    let multipliers: (UInt64, UInt64)
    /// lookups @0, misses @1, evictions @2, enabled @3: raw words, because every `var`
    /// of a class pays a dynamic exclusivity check per access.
    let words: UnsafeMutablePointer<UInt64>
    /// The route slots its entries may have been made from, while they are few (the worker
    /// notes each slot it makes a per-route decision for, and "no route", slot 0): a FIB
    /// publication that marked none of them changes no entry, so the worker keeps its cache's
    /// generation and its hits need no re-check (`changedAny`). [0]: how many, or `.max` once
    /// more than `slotListCapacity` were seen (then every publication counts).
    let slotList: UnsafeMutablePointer<UInt32>
    static let slotListCapacity = 32

    /// Whether lookups use the cache (off: every packet is a miss that stores nothing, and
    /// turning it off empties it). Like every method here, for the cache's worker, or before
    /// workers start.
    public var isEnabled: Bool {
        get { unsafe words[3] != 0 }
        set {
            unsafe words[3] = newValue ? 1 : 0
            if !newValue { flush() }
        }
    }
    /// Lookups that found their entry: lookups (counted per batch) less misses.
    public var hits: UInt64 { unsafe words[0] &- words[1] }
    public var misses: UInt64 { unsafe words[1] }
    public var evictions: UInt64 { unsafe words[2] }

    /// `capacity` entries, rounded up to a power of two and at least two sets.
    public init(capacity: Int = 4096, seed: UInt64 = UInt64.random(in: 0 ... .max)) {
        precondition(MemoryLayout<RouteResult>.size <= 40, "a route cache entry is one 64-byte line")
        precondition(MemoryLayout<RouteResult>.offset(of: \RouteResult.neighbour) == RouteCacheReader.neighbourOffset - 24
                     && MemoryLayout<RouteResult>.offset(of: \RouteResult.mtu) == RouteCacheReader.mtuOffset - 24
                     && MemoryLayout<RouteResult>.offset(of: \RouteResult.slot) == RouteCacheReader.slotOffset - 24,
                     "RouteResult's layout moved: update RouteCacheReader's offsets")
        var sets = 2
        while sets * RouteCache.ways < capacity { sets <<= 1 }
        self.capacity = sets * RouteCache.ways
        shift = UInt64(64 - sets.trailingZeroBitCount)
        memory = LargeMemory(bytes: self.capacity * 64)
        unsafe entries = unsafe memory.base
        unsafe entries.initializeMemory(as: UInt8.self, repeating: 0, count: self.capacity * 64)
        var random = SplitMix64(seed: seed)
        multipliers = (random.next() | 1, random.next() | 1)
        unsafe words = .allocate(capacity: 4)
        unsafe words.initialize(repeating: 0, count: 4)
        unsafe words[3] = 1
        // [0]: the count, then the slots, then the last slot noted (.max: none).
        unsafe slotList = .allocate(capacity: RouteCache.slotListCapacity + 2)
        unsafe slotList.initialize(repeating: 0, count: RouteCache.slotListCapacity + 1)
        unsafe (slotList + RouteCache.slotListCapacity + 1).initialize(to: .max)
    }

    deinit {
        unsafe slotList.deallocate()
        unsafe words.deallocate()
        memory.deallocate()
    }

    /// The key word of a destination and source (host order): their wire bytes, source first,
    /// as one little-endian load of IPv4 header bytes 12..<20 reads them.
    @inline(__always)
    package static func key0(destination: UInt32, source: UInt32) -> UInt64 {
        UInt64(destination.byteSwapped) << 32 | UInt64(source.byteSwapped)
    }

    /// What a lookup reads, copied out of the object so a loop keeps it in registers.
    @inline(__always)
    var reader: RouteCacheReader { unsafe RouteCacheReader(entries: entries, shift: shift, multipliers: multipliers) }

    /// Counts `count` lookups (callers count per batch, not per packet).
    @inline(__always)
    public func countLookups(_ count: Int) { unsafe words[0] &+= UInt64(count) }

    /// Counts misses found without `lookup` (the fast path's).
    @inline(__always)
    func countMisses(_ count: Int = 1) { unsafe words[1] &+= UInt64(count) }

    /// The validity word of an entry made now: the cache epoch's low 32 bits over the FIB
    /// generation (low 32 bits) the decision was made at.
    @inline(__always)
    public static func validity(epoch: UInt64, generation: UInt32) -> UInt64 {
        UInt64(UInt32(truncatingIfNeeded: epoch)) << 32 | UInt64(generation)
    }

    /// The cached result for a key, or nil (a miss is counted). Key words: `k0` =
    /// `key0(destination:source:)`, `k1` = mark << 32 | TOS << 16 | input ifindex. `current` is
    /// `validity(epoch:generation:)` of the worker's epoch and adopted FIB generation: an entry
    /// made at it (or re-checked since) hits at once; one from an earlier generation of the
    /// same epoch hits when its route slot has not changed since (`changed`) — and is then
    /// marked current — and is emptied when it has; one from another epoch misses.
    @inline(__always)
    public func lookup(_ k0: UInt64, _ k1: UInt64, current: UInt64, changed: UnsafeMutablePointer<UInt32>) -> RouteResult? {
        if let hit = unsafe reader.lookup(k0, k1, current: current, changed: changed) { return hit }
        unsafe words[1] &+= 1
        return nil
    }

    /// Stores `result` for the key, made at `current` (`validity`).
    @inline(__always)
    public func insert(_ k0: UInt64, _ k1: UInt64, current: UInt64, _ result: RouteResult) {
        unsafe insert(k0, k1, into: reader.setBase(k0, k1), current: current, result)
    }

    /// `insert` into the key's set, `base` (`RouteCacheReader.setBase`), known already.
    @inline(__always)
    func insert(_ k0: UInt64, _ k1: UInt64, into base: UnsafeMutableRawPointer, current: UInt64, _ result: RouteResult) {
        guard unsafe words[3] != 0 else { return }
        var chosen = -1
        // An empty way, or one of an earlier epoch (below the epoch's floor; a lookup that found
        // the key's entry stale emptied it).
        let floor = current & 0xFFFF_FFFF_0000_0000
        for way in 0..<RouteCache.ways where unsafe (base + way &* 64).load(fromByteOffset: 16, as: UInt64.self) < floor {
            chosen = way
            break
        }
        if chosen < 0 {
            guard let victim = evict() else { return }
            chosen = victim
        }
        let entry = unsafe base + chosen &* 64
        unsafe entry.storeBytes(of: k0, as: UInt64.self)
        unsafe entry.storeBytes(of: k1, toByteOffset: 8, as: UInt64.self)
        unsafe entry.storeBytes(of: current, toByteOffset: 16, as: UInt64.self)
        unsafe entry.storeBytes(of: result, toByteOffset: 24, as: RouteResult.self)
    }

    /// Adds `slot` to the slots entries may be made from (see `slotList`). Out of line: its
    /// callers are the rare paths (a per-route decision made, no route found).
    @inline(never)
    func noteSlot(_ slot: UInt32) {
        guard unsafe slotList[RouteCache.slotListCapacity + 1] != slot else { return }
        unsafe slotList[RouteCache.slotListCapacity + 1] = slot
        let count = unsafe slotList[0]
        guard count != .max else { return }
        for i in 0..<Int(count) where unsafe slotList[1 + i] == slot { return }
        if Int(count) == RouteCache.slotListCapacity {
            unsafe slotList[0] = .max
        } else {
            unsafe slotList[1 + Int(count)] = slot
            unsafe slotList[0] = count + 1
        }
    }

    /// Forgets the slots entries were made from (every entry is stale: a new epoch).
    func forgetSlots() {
        unsafe slotList[0] = 0
        unsafe slotList[RouteCache.slotListCapacity + 1] = .max
    }

    /// Whether a publication from `stamp` up to `adopted` may have changed an entry: one of
    /// the slots they were made from has a mark in that range (a mark after `adopted` is for a
    /// generation not published yet and counts at a later adoption) — or the slots are too
    /// many to know.
    func changedAny(_ changed: UnsafeMutablePointer<UInt32>, since stamp: UInt32, adopted: UInt32) -> Bool {
        let count = unsafe slotList[0]
        guard count != .max else { return true }
        for i in 0..<Int(count) where unsafe !RouteSlots.holds(changed: changed, slot: slotList[1 + i], stamp: stamp,
                                                        adopted: adopted) {
            return true
        }
        return false
    }

    /// The way a full set gives up, counted as an eviction, or nil when this miss leaves the set
    /// as it is (all but one miss in `replacementInterval`). Both follow the misses counted so
    /// far (every insert follows a miss): the interval's low bits, the way the bits above —
    /// round robin — so no word of its own is loaded and stored.
    @inline(__always)
    func evict() -> Int? {
        let misses = unsafe words[1]
        guard misses & (RouteCache.replacementInterval &- 1) == 0 else { return nil }
        unsafe words[2] &+= 1
        return Int(truncatingIfNeeded: misses / RouteCache.replacementInterval) & (RouteCache.ways - 1)
    }

    /// Empties every entry.
    public func flush() {
        for index in 0..<capacity { unsafe (entries + index &* 64).storeBytes(of: 0, toByteOffset: 16, as: UInt64.self) }
    }

    /// Entries of cache epoch `epoch` (for tests: the cache stays bounded).
    package func liveEntries(epoch: UInt64) -> Int {
        (0..<capacity).reduce(0) {
            unsafe $0 + ((entries + $1 &* 64).load(fromByteOffset: 16, as: UInt64.self) >> 32 == epoch & 0xFFFF_FFFF ? 1 : 0)
        }
    }
}

/// A route cache's entries and hash secret, for lookups that count nothing (the caller counts).
@safe struct RouteCacheReader {
    let entries: UnsafeMutableRawPointer
    let shift: UInt64
    let multipliers: (UInt64, UInt64)

    /// The set index of a key: multiply-shift hashing (Dietzfelbinger et al.) with secret
    /// random odd multipliers, the top bits of `k0·m0 + k1·m1` — two keys share a set with
    /// probability about 2/sets whatever a sender picks, since it does not know the multipliers.
    @inline(__always)
    func set(_ k0: UInt64, _ k1: UInt64) -> Int {
        Int(truncatingIfNeeded: (k0 &* multipliers.0 &+ k1 &* multipliers.1) &>> shift)
    }

    /// The first entry of the key's set.
    @inline(__always)
    func setBase(_ k0: UInt64, _ k1: UInt64) -> UnsafeMutableRawPointer {
        unsafe entries + set(k0, k1) &* (RouteCache.ways &* 64)
    }

    /// The result cached for the key in `epoch`, or nil. With `changed`, an entry whose route
    /// slot changed since it was made is no hit (and is emptied).
    @inline(__always)
    func lookup(_ k0: UInt64, _ k1: UInt64, epoch: UInt64, changed: UnsafeMutablePointer<UInt32>? = nil) -> RouteResult? {
        let base = unsafe setBase(k0, k1)
        for way in 0..<RouteCache.ways {
            let entry = unsafe base + way &* 64
            if unsafe entry.load(as: UInt64.self) == k0, unsafe entry.load(fromByteOffset: 8, as: UInt64.self) == k1,
               unsafe entry.load(fromByteOffset: 16, as: UInt64.self) == epoch {
                let result = unsafe entry.load(fromByteOffset: 24, as: RouteResult.self)
                if let changed = unsafe changed, unsafe !RouteSlots.isCurrent(changed: changed, slot: result.slot, stamp: result.stamp) {
                    unsafe entry.storeBytes(of: 0, toByteOffset: 16, as: UInt64.self)
                    return nil
                }
                return result
            }
        }
        return nil
    }

    /// Where `RouteResult`'s fields lie (checked against the compiler's layout when a cache is
    /// made): the fast path reads only those it needs from an entry.
    static let neighbourOffset = 24 + 0, mtuOffset = 24 + 14, slotOffset = 24 + 24
    /// Where an entry's whole `RouteResult` starts.
    static let resultOffset = 24

    /// Whether the matching `entry` holds at `current` (see `RouteCache.lookup`): at once when
    /// made at or re-checked since the current generation; else when its slot has not changed
    /// since its stamp — marking it current — and otherwise it is emptied.
    @inline(__always)
    static func holds(_ entry: UnsafeMutableRawPointer, current: UInt64, changed: UnsafeMutablePointer<UInt32>) -> Bool {
        unsafe entry.load(fromByteOffset: 16, as: UInt64.self) >= current || recheck(entry, current: current, changed: changed)
    }

    /// `holds` for an entry made before the current generation (out of line: rare but for
    /// route churn).
    @inline(never)
    static func recheck(_ entry: UnsafeMutableRawPointer, current: UInt64, changed: UnsafeMutablePointer<UInt32>) -> Bool {
        let word = unsafe entry.load(fromByteOffset: 16, as: UInt64.self)
        guard word >> 32 == current >> 32 else { return false }
        let slot = unsafe entry.load(fromByteOffset: slotOffset, as: UInt32.self)
        guard unsafe RouteSlots.holds(changed: changed, slot: slot, stamp: UInt32(truncatingIfNeeded: word),
                               adopted: UInt32(truncatingIfNeeded: current)) else {
            unsafe entry.storeBytes(of: 0, toByteOffset: 16, as: UInt64.self)
            return false
        }
        unsafe entry.storeBytes(of: current, toByteOffset: 16, as: UInt64.self)
        return true
    }

    /// The result cached for the key, or nil (`RouteCache.lookup`).
    @inline(__always)
    func lookup(_ k0: UInt64, _ k1: UInt64, current: UInt64, changed: UnsafeMutablePointer<UInt32>) -> RouteResult? {
        let base = unsafe setBase(k0, k1)
        for way in 0..<RouteCache.ways {
            let entry = unsafe base + way &* 64
            if unsafe entry.load(as: UInt64.self) == k0, unsafe entry.load(fromByteOffset: 8, as: UInt64.self) == k1 {
                return unsafe RouteCacheReader.holds(entry, current: current, changed: changed)
                    ? entry.load(fromByteOffset: 24, as: RouteResult.self) : nil
            }
        }
        return nil
    }

    /// `lookup` in the key's set, `base`, for the fast path: the key's entry, if it holds —
    /// its neighbour handle and MTU are read in place (`neighbourOffset`, `mtuOffset`).
    @inline(__always)
    static func find(_ k0: UInt64, _ k1: UInt64, in base: UnsafeMutableRawPointer, current: UInt64,
                     changed: UnsafeMutablePointer<UInt32>) -> UnsafeMutableRawPointer? {
        for way in 0..<RouteCache.ways {
            let entry = unsafe base + way &* 64
            if unsafe entry.load(as: UInt64.self) == k0, unsafe entry.load(fromByteOffset: 8, as: UInt64.self) == k1 {
                return unsafe holds(entry, current: current, changed: changed) ? entry : nil
            }
        }
        return nil
    }
}
