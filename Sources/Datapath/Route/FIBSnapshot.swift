import DatapathCore
import DatapathWire

/// The FIB's best routes — one per prefix — in slots whose numbers stay the same while the
/// route is in the table (Linux: the `fib_info`s the trie's leaves point at), so a change does
/// not renumber the table. Workers read a slot's route, and `changed`: per slot, the FIB
/// generation (low 32 bits) from which what the slot decides changed last — its route was
/// replaced or removed, or a more specific route took part of its range. A route cache entry,
/// a per-route dst or a held route made from slot `s` at generation `g` is current while
/// `changed[s]` is not after `g` (`isCurrent`); slot 0 stands for "no route".
///
/// The slots live in one reserved mapping that never moves (pages are taken as they are
/// touched). The control plane (under the FIB's lock) fills, retires and reuses them; a retired
/// slot is reused only after a grace period, when no worker can still read it.
@_spi(Internals) @safe public final class RouteSlots: @unchecked Sendable {
    /// How many routes a table holds by default.
    public static let defaultCapacity = 1 << 22
    /// How many routes this table can hold (slot 0 is the placeholder).
    public let capacity: Int
    let routeMemory: LargeMemory
    let changedMemory: LargeMemory
    @usableFromInline let routes: UnsafeMutablePointer<Route>
    /// Per slot, the generation its decisions last changed at (read by workers, no lock).
    public let changed: UnsafeMutablePointer<UInt32>
    /// Per slot, the generation its route was put in it at: what a worker's per-route
    /// decision for the slot (made from the route alone) depends on. A more specific route
    /// taking part of the slot's range marks `changed`, not this, so the per-route dst stays.
    public let allocated: UnsafeMutablePointer<UInt32>
    let allocatedMemory: LargeMemory
    /// Control plane only (the FIB's lock): slot numbers, and which slots hold a route.
    var numbers: RecycledNumbers
    var live: [Bool] = [false]

    init(capacity: Int = RouteSlots.defaultCapacity) {
        self.capacity = capacity
        numbers = RecycledNumbers(capacity: capacity)
        routeMemory = LargeMemory(bytes: capacity * MemoryLayout<Route>.stride)
        changedMemory = LargeMemory(bytes: capacity * 4)
        unsafe routes = unsafe routeMemory.base.bindMemory(to: Route.self, capacity: capacity)
        unsafe changed = unsafe changedMemory.base.bindMemory(to: UInt32.self, capacity: capacity)
        allocatedMemory = LargeMemory(bytes: capacity * 4)
        unsafe allocated = unsafe allocatedMemory.base.bindMemory(to: UInt32.self, capacity: capacity)
        // Slot 0: what a lookup that finds no route reads (never a leaf's route).
        unsafe routes.initialize(to: Route(prefix: IPv4Prefix(address: .zero, length: 0)!, type: .blackhole))
        live[0] = true
    }

    deinit {
        for slot in live.indices where live[slot] { unsafe (routes + slot).deinitialize(count: 1) }
        routeMemory.deallocate()
        changedMemory.deallocate()
        allocatedMemory.deallocate()
        unsafe highWaterWord.deallocate()
    }

    /// Slots in use or once used: what a per-slot table of a worker must cover. Safe while
    /// workers run.
    public var count: Int { unsafe Int(SharedWord.load(highWaterWord)) }
    let highWaterWord: UnsafeMutablePointer<UInt64> = {
        let word = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        unsafe word.initialize(to: 1)
        return unsafe word
    }()

    /// The route in slot `index` (a leaf of the current trie; 0: the "no route" placeholder).
    @inlinable
    public subscript(index: Int) -> Route { unsafe routes[index] }

    /// Whether something made from slot `slot` at generation `stamp` still holds: its slot's
    /// decisions have not changed since (wrap-safe).
    @inline(__always)
    static func isCurrent(changed: UnsafeMutablePointer<UInt32>, slot: UInt32, stamp: UInt32) -> Bool {
        unsafe Int32(bitPattern: stamp &- SharedWord.loadRelaxed(changed + Int(slot))) >= 0
    }

    /// `isCurrent` as a worker on generation `adopted` sees it: a mark for a generation it has
    /// not adopted yet (the control plane marks slots before it publishes) does not count, so
    /// the worker keeps what matches its snapshot until it takes the next one.
    @inline(__always)
    static func holds(changed: UnsafeMutablePointer<UInt32>, slot: UInt32, stamp: UInt32, adopted: UInt32) -> Bool {
        let mark = unsafe SharedWord.loadRelaxed(changed + Int(slot))
        return Int32(bitPattern: stamp &- mark) >= 0 || Int32(bitPattern: adopted &- mark) < 0
    }

    /// A slot for `route` (control plane): a free one whose grace period is over, else a new
    /// one. Nil when the table is full.
    func allocate(_ route: Route, generation: UInt32, quiescence: Quiescence?) -> UInt32? {
        guard let slot = numbers.take(quiescence: quiescence, reclaim: reclaim) else { return nil }
        while live.count <= Int(slot) { live.append(false) }
        unsafe SharedWord.store(highWaterWord, UInt64(numbers.highWater))
        unsafe (routes + Int(slot)).initialize(to: route)
        live[Int(slot)] = true
        mark(slot, generation)
        unsafe SharedWord.storeRelaxed(allocated + Int(slot), generation)
        return slot
    }

    /// How many slots `allocate` can hand out now (control plane).
    func available(quiescence: Quiescence?) -> Int {
        numbers.available(quiescence: quiescence, reclaim: reclaim)
    }

    /// A retired slot whose grace period is over: its route goes.
    private func reclaim(_ slot: UInt32) {
        unsafe (routes + Int(slot)).deinitialize(count: 1)
        live[Int(slot)] = false
    }

    /// Marks a slot given up: what was made from it is stale from `generation` on. The FIB
    /// hands its number back at publication, to be reused after a grace period.
    func retire(_ slot: UInt32, generation: UInt32) {
        mark(slot, generation)
    }

    /// Records that slot `slot`'s decisions change at `generation` (control plane). Workers
    /// read the marks while the control plane writes marks for a generation they have not
    /// adopted yet (`holds` discounts those), so both sides use relaxed atomic accesses: plain
    /// moves on x86-64, and no data race.
    func mark(_ slot: UInt32, _ generation: UInt32) {
        unsafe SharedWord.storeRelaxed(changed + Int(slot), generation)
    }
}

/// The FIB trie's nodes: 256-entry groups in one reserved mapping that never moves, so workers
/// follow node numbers without a lock. An entry is a leaf — a route slot, 0 for none — or,
/// with the top bit set, the number of the node one level down. Node 0 is unused.
@safe final class TrieNodes: @unchecked Sendable {
    static let nodeFlag: UInt32 = 1 << 31
    let memory: LargeMemory
    let entries: UnsafeMutablePointer<UInt32>
    var numbers: RecycledNumbers

    init(capacity: Int) {
        numbers = RecycledNumbers(capacity: capacity)
        memory = LargeMemory(bytes: capacity * 256 * 4)
        unsafe entries = unsafe memory.base.bindMemory(to: UInt32.self, capacity: capacity * 256)
    }

    deinit { memory.deallocate() }

    /// Nodes in use (the trie's size: used minus free).
    var inUse: Int { numbers.inUse }

    /// How many nodes `allocate` can hand out now (control plane).
    func available(quiescence: Quiescence?) -> Int { numbers.available(quiescence: quiescence, reclaim: { _ in }) }

    /// A node filled with `leaf` (control plane). Nil when none is left.
    func allocate(filledWith leaf: UInt32, quiescence: Quiescence?) -> UInt32? {
        guard let node = numbers.take(quiescence: quiescence, reclaim: { _ in }) else { return nil }
        unsafe (entries + Int(node) << 8).update(repeating: leaf, count: 256)
        return node
    }
}

/// Numbers from 1 up to `capacity` handed out and taken back (the FIB's nodes and route slots):
/// a number given up is retired with a grace-period ticket and handed out again only once the
/// grace period is over (`Quiescence.hasElapsed`), so no worker still reads what it named.
struct RecycledNumbers {
    let capacity: Int
    var highWater = 1
    var free: [UInt32] = []
    var retired: [(number: UInt32, ticket: UInt64)] = []

    init(capacity: Int) { self.capacity = capacity }

    /// Numbers in use: handed out, neither free nor waiting.
    var inUse: Int { highWater - 1 - free.count - retired.count }

    /// A free number — retired ones whose grace period is over are reclaimed first, each
    /// through `reclaim` — else a new one; nil when all are in use.
    /// Without a quiescence domain (a table no worker reads) a retired number is free at once.
    mutating func take(quiescence: Quiescence?, reclaim: (UInt32) -> Void) -> UInt32? {
        if free.isEmpty { reclaimElapsed(quiescence: quiescence, reclaim: reclaim) }
        if let reused = free.popLast() { return reused }
        guard highWater < capacity else { return nil }
        highWater += 1
        return UInt32(highWater - 1)
    }

    /// How many numbers `take` can hand out now: never used, free, or retired with their grace
    /// period over (those are reclaimed now).
    mutating func available(quiescence: Quiescence?, reclaim: (UInt32) -> Void) -> Int {
        reclaimElapsed(quiescence: quiescence, reclaim: reclaim)
        return capacity - highWater + free.count
    }

    /// Moves the retired numbers whose grace period is over to `free`, each through `reclaim`.
    mutating func reclaimElapsed(quiescence: Quiescence?, reclaim: (UInt32) -> Void) {
        guard !retired.isEmpty else { return }
        // Tickets only grow: the first one whose grace period is still open ends the scan.
        var elapsed = 0
        while elapsed < retired.count, quiescence?.hasElapsed(retired[elapsed].ticket) ?? true {
            reclaim(retired[elapsed].number)
            free.append(retired[elapsed].number)
            elapsed += 1
        }
        retired.removeFirst(elapsed)
    }
}

/// An immutable view of the FIB's longest-prefix-match trie (DESIGN.md §6) at one generation,
/// read by workers without a lock: strides 8-8-8-8 over shared, never-moving nodes — a lookup
/// is two to four dependent loads. A change copies only the nodes on its path and the ones its
/// prefix covers (the DIR-24-8 update of DPDK's `rte_lpm_add`/`_delete`) and publishes a new
/// root: readers of the old root keep a consistent view, and the replaced nodes are reused only
/// after a grace period. Route slots keep their numbers across changes.
@_spi(Internals) @safe public final class FIBSnapshot: @unchecked Sendable {
    /// The routes the leaves point at, by slot (0: the "no route" placeholder).
    public let routes: RouteSlots
    /// Bumped on every publication.
    public let generation: UInt64
    @usableFromInline let entries: UnsafeMutablePointer<UInt32>
    /// Kept so that the nodes' memory lives as long as any snapshot does.
    let nodes: TrieNodes
    @usableFromInline let root: Int
    @usableFromInline static let nodeFlag: UInt32 = 1 << 31
    /// Nodes in use when it was published.
    public let groupCount: Int

    /// `groupCount`: the nodes in use (0 in a worker's view, which does not count them).
    init(routes: RouteSlots, nodes: TrieNodes, root: UInt32, generation: UInt64, groupCount: Int) {
        self.routes = routes
        self.generation = generation
        unsafe entries = unsafe nodes.entries
        self.nodes = nodes
        self.root = Int(root)
        self.groupCount = groupCount
    }

    /// The slot of the longest prefix holding `destination` (host order); 0 when none does.
    @inlinable @inline(__always)
    public func lookupIndex(_ destination: UInt32) -> Int {
        unsafe Int(FIBSnapshot.leaf(destination, entries: entries, root: root))
    }

    /// The leaf for `destination` in the trie at node `root` of `entries` — a snapshot's, or
    /// the FIB's working trie while it changes (`FIB.newParentSlot`).
    @inlinable @inline(__always)
    static func leaf(_ destination: UInt32, entries: UnsafeMutablePointer<UInt32>, root: Int) -> UInt32 {
        var entry = unsafe entries[root &<< 8 | Int(destination >> 24)]
        if entry & FIBSnapshot.nodeFlag != 0 {
            entry = unsafe entries[Int(entry & ~FIBSnapshot.nodeFlag) &<< 8 | Int((destination >> 16) & 0xFF)]
            if entry & FIBSnapshot.nodeFlag != 0 {
                entry = unsafe entries[Int(entry & ~FIBSnapshot.nodeFlag) &<< 8 | Int((destination >> 8) & 0xFF)]
                if entry & FIBSnapshot.nodeFlag != 0 {
                    entry = unsafe entries[Int(entry & ~FIBSnapshot.nodeFlag) &<< 8 | Int(destination & 0xFF)]
                }
            }
        }
        return entry
    }

    /// The route for `destination`, if any (Linux: `fib_lookup`).
    @inlinable
    public func lookup(_ destination: IPv4Address) -> Route? {
        let index = lookupIndex(destination.hostOrder)
        return index == 0 ? nil : routes[index]
    }

    /// The generation's low 32 bits, as stamps carry it.
    @inline(__always)
    var stamp: UInt32 { UInt32(truncatingIfNeeded: generation) }

    /// Bytes the trie's nodes take.
    package var memoryBytes: Int { max(1, groupCount) * 256 * 4 }
}
