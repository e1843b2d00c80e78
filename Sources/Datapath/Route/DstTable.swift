import DatapathCore

/// One worker's dst entries (Linux: the dsts cached per CPU on each next hop,
/// `nh_pcpu_rth_output` / `nh_rth_input`, and the `dst_ops` that allocate and free them): the
/// one owner of every `DstEntry` the worker's packets point at. Only its worker touches it, so
/// its fields skip the dynamic exclusivity check a class `var` pays on each access.
///
/// Three kinds of entry:
/// - *static* ones, one per (input, flags) of a decision with no way out — local delivery,
///   broadcast, blackhole, the unreachables, martians — made once, never freed;
/// - *per route* ones, made the first time a FIB route forwards on this worker and shared by
///   every destination it covers (a connected route's packets carry their own neighbour);
///   given up when the FIB epoch moves on;
/// - *owned* ones, made for one holder (a path-MTU exception's route, later a socket's route or
///   an xfrm bundle) and given up by it.
///
/// An entry given up stays readable until `endBatch` (the worker's packets in flight may point
/// at it) and its handles fail `check` at once. No reference counts: single-threaded, like the
/// worker's route cache. Storage grows by doubling, between batches only being safe: growth
/// happens in `make`, which never runs while a caller holds a pointer into the table.
@safe final class DstTable: @unchecked Sendable {
    @exclusivity(unchecked) private(set) var entries: UnsafeMutablePointer<DstEntry>
    @exclusivity(unchecked) private(set) var generations: UnsafeMutablePointer<UInt32>
    /// Free-list links (slot index; 0 ends the list).
    @exclusivity(unchecked) private(set) var links: UnsafeMutablePointer<UInt32>
    @exclusivity(unchecked) private(set) var capacity: Int
    @exclusivity(unchecked) var freeHead: UInt32 = 0
    /// Slots given up during the current batch, freed by `endBatch`.
    @exclusivity(unchecked) var deferred: [UInt32] = []
    /// Entries made and not given up (statics included).
    @exclusivity(unchecked) private(set) var live = 0

    /// Statics: 1 + (input × 8 + flags) for every input and flags value 0...7 (broadcast,
    /// local, multicast).
    static let staticCount = 11 * 8

    /// The static entry of a decision with no way out.
    @inline(__always)
    static func staticIndex(_ input: DstInput, flags: RouteFlags) -> UInt32 {
        1 &+ UInt32(input.rawValue) &* 8 &+ UInt32(flags.rawValue & 7)
    }

    init(capacity requested: Int = 1024) {
        unsafe capacity = max(requested, DstTable.staticCount + 16)
        unsafe entries = unsafe .allocate(capacity: capacity)
        unsafe generations = unsafe .allocate(capacity: capacity)
        unsafe links = unsafe .allocate(capacity: capacity)
        unsafe entries.initialize(repeating: DstEntry(input: .none, flags: []), count: capacity)
        unsafe generations.initialize(repeating: 1, count: capacity)
        unsafe links.initialize(repeating: 0, count: capacity)
        for input in 0..<11 {
            for flags in 0..<8 {
                let decision = DstInput(rawValue: UInt8(input))!
                let set = RouteFlags(rawValue: UInt8(flags))
                unsafe entries[Int(DstTable.staticIndex(decision, flags: set))] = DstEntry(input: decision, flags: set)
            }
        }
        unsafe live = DstTable.staticCount
        linkFree(from: DstTable.staticCount + 1)
        unsafe deferred.reserveCapacity(64)
    }

    deinit {
        unsafe entries.deallocate()
        unsafe generations.deallocate()
        unsafe links.deallocate()
    }

    /// Chains slots `start..<capacity` onto the free list.
    private func linkFree(from start: Int) {
        guard unsafe start < capacity else { return }
        for slot in unsafe start..<(capacity - 1) { unsafe links[slot] = UInt32(slot + 1) }
        unsafe links[capacity - 1] = unsafe freeHead
        unsafe freeHead = UInt32(start)
    }

    /// The entry at `index` (its own worker only; `.none` reads an empty decision).
    @inline(__always)
    subscript(index: UInt32) -> DstEntry {
        unsafe precondition(Int(index) < capacity, "dst index outside the table")
        return unsafe entries[Int(index)]
    }

    /// Stores a new entry (Linux: `dst_alloc`) and returns its index. Never fails: the table
    /// doubles when full (at most the number of routes in use plus what holders keep).
    func make(_ entry: DstEntry) -> DstIndex {
        if unsafe freeHead == 0 { grow() }
        let slot = unsafe freeHead
        unsafe freeHead = unsafe links[Int(slot)]
        unsafe links[Int(slot)] = 0
        // A new generation for the new entry too: a handle taken on the slot after it was
        // given up (a packet of the batch held beyond it) must not name what comes next.
        unsafe generations[Int(slot)] &+= 1
        unsafe entries[Int(slot)] = entry
        unsafe live += 1
        return DstIndex(rawValue: slot)
    }

    private func grow() {
        let old = unsafe capacity
        let bigger = old * 2
        let newEntries = UnsafeMutablePointer<DstEntry>.allocate(capacity: bigger)
        let newGenerations = UnsafeMutablePointer<UInt32>.allocate(capacity: bigger)
        let newLinks = UnsafeMutablePointer<UInt32>.allocate(capacity: bigger)
        unsafe newEntries.moveInitialize(from: entries, count: old)
        unsafe newGenerations.moveInitialize(from: generations, count: old)
        unsafe newLinks.moveInitialize(from: links, count: old)
        unsafe (newEntries + old).initialize(repeating: DstEntry(input: .none, flags: []), count: old)
        unsafe (newGenerations + old).initialize(repeating: 1, count: old)
        unsafe (newLinks + old).initialize(repeating: 0, count: old)
        unsafe entries.deallocate()
        unsafe generations.deallocate()
        unsafe links.deallocate()
        unsafe entries = unsafe newEntries
        unsafe generations = unsafe newGenerations
        unsafe links = unsafe newLinks
        unsafe capacity = bigger
        linkFree(from: old)
    }

    /// Gives up an entry (Linux: `dst_release` of the last reference → `dst_destroy` after a
    /// grace period): its handles fail `check` now; its slot is reused after `endBatch`.
    /// Statics and `.none` are never given up.
    func release(_ index: DstIndex) {
        let slot = index.rawValue
        guard slot > UInt32(DstTable.staticCount), unsafe Int(slot) < capacity,
              unsafe !deferred.contains(slot) else { return }  // given up already this batch
        unsafe generations[Int(slot)] &+= 1
        unsafe deferred.append(slot)
    }

    /// Frees what was given up during the batch; call when none of its packets is in flight.
    @inline(__always)
    func endBatch() {
        if unsafe deferred.isEmpty { return }
        for slot in unsafe deferred {
            unsafe entries[Int(slot)] = DstEntry(input: .none, flags: [])
            unsafe links[Int(slot)] = unsafe freeHead
            unsafe freeHead = slot
            unsafe live -= 1
        }
        unsafe deferred.removeAll(keepingCapacity: true)
    }

    // MARK: Holders across batches

    /// A handle for keeping `index` beyond the batch, for a route decided at FIB generation
    /// `stamp` (by default the entry's own).
    func handle(_ index: DstIndex, stamp: UInt32? = nil) -> DstHandle {
        unsafe DstHandle(index: index, generation: generations[Int(index.rawValue)],
                  stamp: stamp ?? entries[Int(index.rawValue)].stamp)
    }

    /// The entry's index when `handle` still names it and it was made in FIB epoch `epoch`
    /// (Linux: `dst_check` → `ipv4_dst_check`, obsolete once `rt_genid` moved on); nil when
    /// the holder must route again.
    func check(_ handle: DstHandle, epoch: UInt64) -> DstIndex? {
        let slot = Int(handle.index.rawValue)
        guard slot > 0, unsafe slot < capacity, unsafe generations[slot] == handle.generation else { return nil }
        // A static never goes stale; any other entry belongs to the epoch it was made in.
        return unsafe slot <= DstTable.staticCount || entries[slot].epoch == epoch ? handle.index : nil
    }

    /// The last dst of the chain starting at `index` (Linux: `dst_path`): `index` itself for a
    /// plain route, the route under every transform for a bundle.
    func path(_ index: DstIndex) -> DstIndex {
        var current = index
        var steps = 0
        while self[current.rawValue].child != .none {
            current = self[current.rawValue].child
            steps += 1
            precondition(steps < 64, "dst chain loops")
        }
        return current
    }

    /// Links `parent` to `child` (building a bundle).
    func setChild(_ child: DstIndex, of parent: DstIndex) {
        precondition(Int(parent.rawValue) > DstTable.staticCount, "a static dst has no child")
        unsafe entries[Int(parent.rawValue)].child = child
    }
}
