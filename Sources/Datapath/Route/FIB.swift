import DatapathCore
import DatapathWire
import Logging
import Synchronization

/// The routing table (Linux: the main FIB table, `fib_table_insert` / `fib_table_delete` /
/// `fib_table_lookup`). The control plane changes routes; each change updates the trie in
/// place of what it covers — copying only the nodes on its path and under its prefix — and
/// publishes a new immutable `FIBSnapshot` (a root and a generation) with the next generation
/// number. Workers take the current snapshot once per batch when the generation moved on and
/// look up in it without a lock. Route slots keep their numbers, and a change marks only the
/// slots whose decisions it changes (`RouteSlots.changed`): the route a new prefix takes
/// destinations from, the slot a removed or replaced route had. Route caches, per-route dsts
/// and held routes made from other slots stay valid.
@safe public final class FIB: @unchecked Sendable {
    struct State {
        /// Per prefix, its routes by ascending metric; the first is the one the trie uses.
        var routes: [IPv4Prefix: [Route]] = [:]
        /// How many routes `routes` holds (kept as it changes: counting a full table per
        /// change would cost what the incremental updates save).
        var total = 0
        /// Per prefix, the slot of its best route (the trie's leaf).
        var bestSlot: [IPv4Prefix: UInt32] = [:]
        /// Per slot, its prefix's length (for painting), indexed by slot.
        var slotLength: [UInt8] = [0]
        /// How many prefixes of each length have a route (a parent search skips the rest).
        var lengthCounts = [Int](repeating: 0, count: 33)
        var snapshot: FIBSnapshot
        /// The working trie's root; nodes made since the last publication are `fresh` (not
        /// yet seen by workers: changed in place), the ones they replaced wait to be retired.
        var root: UInt32
        var fresh: Set<UInt32> = []
        var replacedNodes: [UInt32] = []
        var replacedSlots: [UInt32] = []
        /// Nodes and slots published snapshots replaced, waiting for a grace-period ticket:
        /// one ticket serves many publications (`retireBatch`), so that a route change does
        /// not move the grace-period epoch every worker reads at each batch.
        var unticketedNodes: [UInt32] = []
        var unticketedSlots: [UInt32] = []
        /// How many `batch` calls are open: while any is, changes wait for one publication.
        var batches = 0
        /// A change was made while batching and is not published yet.
        var unpublished = false
    }

    let state: Lock<State>
    let nodes: TrieNodes
    let slots: RouteSlots
    /// Trie nodes adds leave free, so that removals — which copy nodes too — can still be
    /// made in a full table.
    let removalReserve: Int
    /// The route-cache epoch (DESIGN.md §6): moves on with every `invalidateCaches` — what
    /// every cached decision depends on changed — not with route changes, which mark slots.
    let epochWord: UnsafeMutablePointer<UInt64>
    /// The published snapshot, for workers to take without the lock: its root node number
    /// above its generation's low `generationBits` bits (`published`).
    let publishedWord: UnsafeMutablePointer<UInt64>
    /// How many low bits of the published word carry the generation.
    static let generationBits = 40
    /// Where retired nodes and slots wait out their grace period (the stack sets it; without
    /// one they are never reused).
    public var quiescence: Quiescence?
    /// Where publications are reported (debug level: one per change). Set before workers start.
    public var logger = Logger(label: "datapath.fib", factory: { _ in SwiftLogNoOpLogHandler() })

    /// How many trie nodes a table has by default (1 GiB of address space, touched as used).
    public static let defaultNodeCapacity = 1 << 20
    /// Routes a table holds unless told (4 194 304: four full Internet tables).
    public static let defaultRouteCapacity = RouteSlots.defaultCapacity

    /// A table of at most `routes` routes (best routes of distinct prefixes) in at most
    /// `nodes` trie nodes (256 entries each; a full Internet table uses about 70 000).
    public init(routes: Int = FIB.defaultRouteCapacity, nodes nodeCount: Int = FIB.defaultNodeCapacity) {
        precondition(routes >= 2 && nodeCount >= 2 && nodeCount <= 1 << (64 - FIB.generationBits),
                     "a FIB needs room for a route and its root, and at most 2^24 nodes")
        nodes = TrieNodes(capacity: nodeCount)
        slots = RouteSlots(capacity: routes)
        removalReserve = min(1024, nodeCount / 16)
        guard let root = nodes.allocate(filledWith: 0, quiescence: nil) else { preconditionFailure("no FIB node") }
        state = Lock(State(snapshot: FIBSnapshot(routes: slots, nodes: nodes, root: root, generation: 1, groupCount: 1),
                            root: root))
        unsafe epochWord = .allocate(capacity: 1)
        unsafe epochWord.initialize(to: 1)
        unsafe publishedWord = .allocate(capacity: 1)
        unsafe publishedWord.initialize(to: FIB.publishedWord(root: root, generation: 1))
    }

    deinit {
        unsafe epochWord.deallocate()
        unsafe publishedWord.deallocate()
    }

    static func publishedWord(root: UInt32, generation: UInt64) -> UInt64 {
        UInt64(root) << generationBits | generation & (1 << generationBits - 1)
    }

    /// The epoch route caches are valid for now; a worker reads it once per batch.
    @inline(__always)
    public var epoch: UInt64 { unsafe SharedWord.load(epochWord) }

    /// The published snapshot as one word — its root node above its generation's low 40
    /// bits — which a worker reads once per batch: when it moved on, the worker makes its own
    /// view of it (`published(_:)`) without taking the table's lock, so route changes never
    /// make a worker wait for the control plane.
    @inline(__always)
    public var published: UInt64 { unsafe SharedWord.load(publishedWord) }

    /// The generation of the published snapshot, modulo 2^40.
    package var publishedGeneration: UInt64 { published & (1 << FIB.generationBits - 1) }

    /// A view of the snapshot a word from `published` names, for a worker: valid while that
    /// worker has not passed a quiescent state since it read the word (the nodes it names are
    /// reused only after a grace period). Its generation is the published one modulo 2^40.
    package func published(_ word: UInt64) -> FIBSnapshot {
        FIBSnapshot(routes: slots, nodes: nodes, root: UInt32(truncatingIfNeeded: word >> FIB.generationBits),
                    generation: word & (1 << FIB.generationBits - 1), groupCount: 0)
    }

    /// Invalidates every route cache without changing a route: something every cached
    /// decision may depend on changed (an address, a link's state or MTU, a neighbour entry
    /// went away).
    package func invalidateCaches() {
        state.withLock { _ in unsafe SharedWord.store(epochWord, SharedWord.load(epochWord) &+ 1) }
    }

    /// The table workers read now: one lock, when the generation moved on. Only workers (whose
    /// quiescent states the grace periods wait for) may keep reading it after the lock: nodes
    /// and slots it names are reused once they have all moved on. Other threads use `lookup`.
    @_spi(Internals) public var snapshot: FIBSnapshot { state.withLock { $0.snapshot } }

    /// The route for `destination` now (Linux: `fib_lookup`), for threads that are not
    /// workers (the control plane, sockets' `connect`): looked up under the table's lock.
    public func lookup(_ destination: IPv4Address) -> Route? {
        state.withLock { $0.snapshot.lookup(destination) }
    }

    public var generation: UInt64 { snapshot.generation }

    /// Every route, by prefix then metric (Linux: `ip route show table main`).
    public var routes: [Route] {
        state.withLock { state in
            state.routes.keys.sorted { ($0.address, $0.length) < ($1.address, $1.length) }
                .flatMap { state.routes[$0]! }
        }
    }

    /// Every route, in no particular order (for counting: no sort of a large table).
    public var unorderedRoutes: [Route] {
        state.withLock { state in state.routes.values.flatMap { $0 } }
    }

    /// Adds routes (Linux: `ip route add`, with NLM_F_EXCL): all or none — a route whose prefix,
    /// metric and type are already present (in the table or earlier in `routes`) throws and
    /// changes nothing. One publication for the lot; each route changes only the part of the
    /// trie its prefix covers.
    public func add(_ routes: [Route]) throws(RouteError) {
        try state.withLock { (state: inout State) throws(RouteError) in
            func clashes(_ route: Route, _ list: [Route]?) -> Bool {
                list?.contains { $0.metric == route.metric && $0.type == route.type } ?? false
            }
            // The first route that clashes with the table or with an earlier one of `routes`.
            let clash = routes.firstIndex { clashes($0, state.routes[$0.prefix]) }
            if let first = [clash, routes.count > 1 ? FIB.firstRepeat(in: routes) : nil].compactMap({ $0 }).min() {
                throw RouteError.exists(routes[first])
            }
            // Room for all of them is checked first, so that none is added when one would not fit.
            try ensureRoom(for: routes.lazy.map(\.prefix), slots: routes.count, reserve: removalReserve, &state)
            for route in routes {
                FIB.insert(route, into: &state.routes[route.prefix, default: []])
                state.total += 1
                try updateBest(route.prefix, &state)
            }
            publish(&state)
        }
    }

    public func add(_ route: Route) throws(RouteError) { try add([route]) }

    /// Puts `route` into a prefix's list, kept by ascending metric, after the routes of its
    /// metric (one dictionary access: the caller passes the list in place).
    static func insert(_ route: Route, into list: inout [Route]) {
        list.insert(route, at: list.firstIndex { $0.metric > route.metric } ?? list.endIndex)
    }

    /// The index of the first route of `routes` whose prefix, metric and type an earlier one
    /// has, nil when none: by sorting compact keys, not by a dictionary of lists (a full table
    /// added at once is a million routes).
    static func firstRepeat(in routes: [Route]) -> Int? {
        func key(_ route: Route) -> (UInt64, UInt64) {
            (UInt64(route.prefix.address.hostOrder) << 8 | UInt64(route.prefix.length),
             UInt64(route.metric) << 8 | UInt64(route.type.rawValue))
        }
        var order = Array(routes.indices)
        order.sort { a, b in
            let (x, y) = (key(routes[a]), key(routes[b]))
            return x != y ? x < y : a < b
        }
        var first: Int?
        for (a, b) in zip(order, order.dropFirst()) where key(routes[a]) == key(routes[b]) {
            first = min(first ?? b, b)
        }
        return first
    }

    /// Removes the route for `prefix` with `metric` (any metric when nil: the best one, as
    /// `ip route del PREFIX` does). Throws when there is none.
    public func remove(_ prefix: IPv4Prefix, metric: UInt32? = nil) throws(RouteError) {
        try state.withLock { (state: inout State) throws(RouteError) in
            guard var list = state.routes[prefix],
                  let index = metric.map({ m in list.firstIndex { $0.metric == m } }) ?? list.indices.first
            else { throw RouteError.notFound(prefix) }
            list.remove(at: index)
            // A removal copies nodes too, and takes a slot when another route of the prefix
            // becomes its best: checked before anything changes.
            try ensureRoom(for: CollectionOfOne(prefix), slots: index == 0 && !list.isEmpty ? 1 : 0, reserve: 0, &state)
            state.routes[prefix] = list.isEmpty ? nil : list
            state.total -= 1
            try updateBest(prefix, &state)
            publish(&state)
        }
    }

    /// Replaces the route for `route.prefix` with `route.metric` (any type), or adds it (Linux:
    /// `ip route replace`, NLM_F_CREATE | NLM_F_REPLACE). Throws `tableFull`, changing nothing,
    /// when it does not fit.
    public func replace(_ route: Route) throws(RouteError) {
        try state.withLock { (state: inout State) throws(RouteError) in
            try ensureRoom(for: CollectionOfOne(route.prefix), slots: 1, reserve: removalReserve, &state)
            var list = state.routes[route.prefix] ?? []
            // The routes addresses bring (Linux keeps them in the local table, which `ip route
            // replace` does not touch) stay.
            let before = list.count
            list.removeAll { $0.metric == route.metric && $0.type != .local && $0.type != .broadcast }
            FIB.insert(route, into: &list)
            state.total += list.count - before
            state.routes[route.prefix] = list
            try updateBest(route.prefix, &state)
            publish(&state)
        }
    }

    /// Removes every route `doomed` picks; returns how many went. One publication. In a table
    /// too full to repaint a prefix (removals copy nodes too), that prefix's routes stay and
    /// the error is logged.
    @discardableResult
    public func removeAll(where doomed: (Route) -> Bool) -> Int {
        state.withLock { state in
            var removed = 0
            for (prefix, list) in state.routes {
                let kept = list.filter { !doomed($0) }
                guard kept.count != list.count else { continue }
                guard change(prefix, to: kept, &state) else { continue }
                removed += list.count - kept.count
            }
            if removed > 0 { publish(&state) }
            return removed
        }
    }

    /// Sets `prefix`'s routes to `kept` (what is left of them) and repaints it, when there is room
    /// for that; logs the refusal otherwise. For the removals that cannot throw.
    private func change(_ prefix: IPv4Prefix, to kept: [Route], _ state: inout State) -> Bool {
        do throws(RouteError) {
            let list = state.routes[prefix]!
            try ensureRoom(for: CollectionOfOne(prefix), slots: kept.first.map { $0 != list[0] ? 1 : 0 } ?? 0,
                           reserve: 0, &state)
            state.total -= list.count - kept.count
            state.routes[prefix] = kept.isEmpty ? nil : kept
            try updateBest(prefix, &state)
            return true
        } catch {
            logger.error("routes for \(prefix) kept: \(error)")
            return false
        }
    }

    /// Removes every route through device `ifindex` (Linux: `fib_sync_down_dev`); a multipath
    /// route loses the next hops through it, and goes when none is left.
    public func removeRoutes(ifindex: Int) {
        state.withLock { state in
            var changed = false
            for (prefix, list) in state.routes {
                let kept = list.compactMap { route -> Route? in
                    guard !route.nexthops.isEmpty else { return route.ifindex == ifindex ? nil : route }
                    let hops = route.nexthops.filter { $0.ifindex != ifindex }
                    guard let first = hops.first else { return nil }
                    var changed = route
                    changed.nexthops = hops.count > 1 ? hops : []
                    changed.gateway = first.gateway
                    changed.ifindex = first.ifindex
                    return changed
                }
                guard kept != list, change(prefix, to: kept, &state) else { continue }
                changed = true
            }
            if changed { publish(&state) }
        }
    }

    /// Runs `body` with publication held back: the route changes it makes (through `add`,
    /// `remove`, `removeRoutes`) are published together, once, when the outermost batch ends —
    /// as when the body throws: what it changed before throwing stays, as with one change at a
    /// time. Workers go on reading the snapshot from before the batch until then. A whole
    /// configuration applies as one batch (Linux publishes per rtnetlink message).
    public func batch<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        state.withLock { $0.batches += 1 }
        defer {
            state.withLock { state in
                state.batches -= 1
                if state.batches == 0 && state.unpublished { publish(&state) }
            }
        }
        return try body()
    }

    /// How many routes the table holds (every metric of every prefix).
    public var count: Int { state.withLock { $0.total } }

    /// The metrics of the routes for `prefix`, ascending (none: empty).
    public func metrics(of prefix: IPv4Prefix) -> [UInt32] {
        state.withLock { $0.routes[prefix]?.map(\.metric) ?? [] }
    }

    func publish(_ state: inout State) {
        if state.batches > 0 {
            state.unpublished = true
            return
        }
        state.unpublished = false
        let generation = state.snapshot.generation &+ 1
        state.snapshot = FIBSnapshot(routes: slots, nodes: nodes, root: state.root, generation: generation,
                                     groupCount: nodes.inUse - state.replacedNodes.count - state.unticketedNodes.count)
        // Stamps compare generations in 32 bits, valid within 2^31 of each other: every 2^30
        // publications every cached decision goes (the epoch) and the marks start again.
        if generation & 0x3FFF_FFFF == 0 {
            let stamp = UInt32(truncatingIfNeeded: generation)
            for slot in 0..<slots.numbers.highWater {
                slots.mark(UInt32(slot), stamp)
                unsafe SharedWord.storeRelaxed(slots.allocated + slot, stamp)
            }
            unsafe SharedWord.store(epochWord, SharedWord.load(epochWord) &+ 1)
        }
        unsafe SharedWord.store(publishedWord, FIB.publishedWord(root: state.root, generation: generation))
        // What workers may still read through the snapshot just replaced is reused only after a
        // grace period, whose ticket (`retireReplaced`, one per `retireBatch`) is taken after the
        // new snapshot is in place: a worker passing a quiescent state after it can only take
        // the new one.
        state.unticketedNodes += state.replacedNodes
        state.unticketedSlots += state.replacedSlots
        state.replacedNodes.removeAll(keepingCapacity: true)
        state.replacedSlots.removeAll(keepingCapacity: true)
        if quiescence == nil || state.unticketedNodes.count + state.unticketedSlots.count >= FIB.retireBatch {
            retireReplaced(&state)
        }
        // A big set (after a whole table's load) would cost its capacity to empty each time.
        if state.fresh.capacity > 1024 { state.fresh = [] } else { state.fresh.removeAll(keepingCapacity: true) }
        logger.debug("FIB generation \(generation) published: \(state.bestSlot.count) routes")
    }
}

// MARK: - The trie's incremental updates

extension FIB {
    /// How many replaced nodes and slots wait for one grace-period ticket.
    static let retireBatch = 256

    /// Starts the grace period of everything published snapshots replaced so far: it is
    /// reused once every worker has passed a quiescent state after this.
    func retireReplaced(_ state: inout State) {
        guard !state.unticketedNodes.isEmpty || !state.unticketedSlots.isEmpty else { return }
        let ticket = quiescence?.retire() ?? 0
        nodes.numbers.retired += state.unticketedNodes.map { ($0, ticket) }
        slots.numbers.retired += state.unticketedSlots.map { ($0, ticket) }
        state.unticketedNodes.removeAll(keepingCapacity: true)
        state.unticketedSlots.removeAll(keepingCapacity: true)
    }

    /// The stamp the next publication carries (what `changed` marks get).
    func nextStamp(_ state: State) -> UInt32 { UInt32(truncatingIfNeeded: state.snapshot.generation &+ 1) }

    /// Makes the trie follow `prefix`'s best route after its list changed: a new prefix
    /// paints its range where only shorter prefixes (or none) were, a new best route for a
    /// prefix takes its old one's leaves, a prefix without routes gives its leaves back to the
    /// longest shorter prefix holding it. Marks the slots whose decisions change. Callers check
    /// first that the change fits (`ensureRoom`): `tableFull` here would mean that check is wrong.
    func updateBest(_ prefix: IPv4Prefix, _ state: inout State) throws(RouteError) {
        let best = state.routes[prefix]?.first
        let old = state.bestSlot[prefix]
        if old == nil && best == nil { return }   // never in the trie (an add that failed)
        if let old, let best, slots[Int(old)] == best { return }
        let stamp = nextStamp(state)
        var new: UInt32?
        if let best {
            guard let slot = slots.allocate(best, generation: stamp, quiescence: quiescence) else {
                throw RouteError.tableFull
            }
            new = slot
            while state.slotLength.count <= Int(slot) { state.slotLength.append(0) }
            state.slotLength[Int(slot)] = UInt8(prefix.length)
        }
        do throws(RouteError) {
            if let old {
                let value: UInt32
                if let new { value = new } else { value = try parentSlot(of: prefix, state) }
                try paint(prefix, &state, value: value) { $0 == old }
                slots.retire(old, generation: stamp)
                state.replacedSlots.append(old)
            } else if let new {
                // The destinations it takes were the longest shorter prefix's (or nobody's).
                slots.mark(try newParentSlot(of: prefix, state), stamp)
                let length = prefix.length
                try paint(prefix, &state, value: new) { [slotLength = state.slotLength] leaf in
                    leaf == 0 || Int(slotLength[Int(leaf)]) < length
                }
            }
        } catch {
            if let new { slots.retire(new, generation: stamp); state.replacedSlots.append(new) }
            throw error
        }
        if let new {
            if old == nil { state.lengthCounts[prefix.length] += 1 }
            state.bestSlot[prefix] = new
        } else {
            state.lengthCounts[prefix.length] -= 1
            state.bestSlot[prefix] = nil
        }
    }

    /// Throws `tableFull` unless repainting `prefixes` (and `slots` new route slots) fits in
    /// what is left, with `reserve` nodes to spare: checked before a change touches anything,
    /// so a change that does not fit changes nothing. A repaint allocates at most one copy of
    /// each node on its path and under its range (copies are made once per publication) and
    /// up to three new nodes where its path splits a leaf; the whole trie bounds the copies,
    /// so a table with room to spare is not walked.
    func ensureRoom(for prefixes: some Collection<IPv4Prefix>, slots needed: Int, reserve: Int,
                    _ state: inout State) throws(RouteError) {
        // Near the edge, what replaced snapshots hold starts its grace period now.
        if slots.available(quiescence: quiescence) < needed + FIB.retireBatch
            || nodes.available(quiescence: quiescence) < reserve + FIB.retireBatch {
            retireReplaced(&state)
        }
        guard slots.available(quiescence: quiescence) >= needed else { throw RouteError.tableFull }
        let left = nodes.available(quiescence: quiescence) - reserve
        if left >= nodes.inUse + 3 * prefixes.count + 1 { return }
        if prefixes.count > 1, left >= nodes.inUse + pathPositions(prefixes) + 1 { return }
        var bound = 0
        for prefix in prefixes {
            bound += nodesCovering(prefix, state) + 3
            if bound > left { throw RouteError.tableFull }
        }
    }

    /// How many distinct nodes below the root the paths of `prefixes` pass through: a bound
    /// on the new nodes their paint can make (each made once, then reused by the others).
    func pathPositions(_ prefixes: some Collection<IPv4Prefix>) -> Int {
        var first = [UInt64](repeating: 0, count: 4)         // /8 positions
        var second = [UInt64](repeating: 0, count: 1024)     // /16 positions
        var third = Set<UInt32>()                            // /24 positions
        var count = 0
        for prefix in prefixes where prefix.length > 8 {
            let address = prefix.address.hostOrder
            let a = Int(address >> 24), b = Int(address >> 16)
            if first[a >> 6] & 1 << (a & 63) == 0 { first[a >> 6] |= 1 << (a & 63); count += 1 }
            guard prefix.length > 16 else { continue }
            if second[b >> 6] & 1 << (b & 63) == 0 { second[b >> 6] |= 1 << (b & 63); count += 1 }
            if prefix.length > 24, third.insert(address >> 8).inserted { count += 1 }
        }
        return count
    }

    /// The nodes on `prefix`'s path from the root and in the subtrees under its range.
    func nodesCovering(_ prefix: IPv4Prefix, _ state: State) -> Int {
        let length = prefix.length
        let address = prefix.address.hostOrder
        let level = length == 0 ? 0 : (length - 1) / 8
        var node = state.root
        var count = 1
        for depth in 0..<level {
            let entry = unsafe nodes.entries[Int(node) << 8 | Int(address >> (24 - 8 * depth) & 0xFF)]
            guard entry & TrieNodes.nodeFlag != 0 else { return count }
            node = entry & ~TrieNodes.nodeFlag
            count += 1
        }
        let bits = length - 8 * level
        let first = length == 0 ? 0 : Int(address >> (24 - 8 * level) & 0xFF) & ~((1 << (8 - bits)) - 1)
        for slot in first..<(first + 1 << (8 - bits)) {
            let entry = unsafe nodes.entries[Int(node) << 8 | slot]
            if entry & TrieNodes.nodeFlag != 0 { count += subtreeSize(entry & ~TrieNodes.nodeFlag) }
        }
        return count
    }

    /// How many nodes the subtree at `node` has, itself included.
    func subtreeSize(_ node: UInt32) -> Int {
        var count = 1
        for slot in 0..<256 {
            let entry = unsafe nodes.entries[Int(node) << 8 | slot]
            if entry & TrieNodes.nodeFlag != 0 { count += subtreeSize(entry & ~TrieNodes.nodeFlag) }
        }
        return count
    }

    /// The slot of the longest prefix strictly shorter than `prefix` that holds it, 0 for none.
    func parentSlot(of prefix: IPv4Prefix, _ state: State) throws(RouteError) -> UInt32 {
        var length = prefix.length - 1
        while length >= 0 {
            if state.lengthCounts[length] > 0,
               let slot = state.bestSlot[IPv4Prefix(address: prefix.address, length: length)!] {
                return slot
            }
            length -= 1
        }
        return 0
    }

    /// `parentSlot` for a prefix not in the trie yet: the working trie's leaf at its address is
    /// the longest prefix holding that address, which is the parent when it is shorter (the
    /// common case: one walk instead of a dictionary probe per length); a more specific prefix
    /// there sends it to the search.
    func newParentSlot(of prefix: IPv4Prefix, _ state: State) throws(RouteError) -> UInt32 {
        let leaf = unsafe FIBSnapshot.leaf(prefix.address.hostOrder, entries: nodes.entries, root: Int(state.root))
        if leaf == 0 || Int(state.slotLength[Int(leaf)]) < prefix.length { return leaf }
        return try parentSlot(of: prefix, state)
    }

    /// A node of the working trie the control plane may change: itself when made since the
    /// last publication, else a copy (the original waits to be retired at publication).
    func own(_ node: UInt32, _ state: inout State) throws(RouteError) -> UInt32 {
        if state.fresh.contains(node) { return node }
        guard let copy = nodes.allocate(filledWith: 0, quiescence: quiescence) else { throw RouteError.tableFull }
        unsafe (nodes.entries + Int(copy) << 8).update(from: nodes.entries + Int(node) << 8, count: 256)
        state.replacedNodes.append(node)
        state.fresh.insert(copy)
        return copy
    }

    /// Sets every leaf in `prefix`'s range that `matches` to `value`, down through the nodes
    /// below (copied when they hold such a leaf): DIR-24-8's update (DPDK's `rte_lpm_add`).
    /// The path to the prefix's level is copied, a leaf on it split into a node of that leaf.
    func paint(_ prefix: IPv4Prefix, _ state: inout State, value: UInt32,
               matches: (UInt32) -> Bool) throws(RouteError) {
        let length = prefix.length
        let address = prefix.address.hostOrder
        let level = length == 0 ? 0 : (length - 1) / 8
        // Nothing to do when a leaf on the path already covers the range and does not match.
        var probe = UInt32(state.root)
        for depth in 0..<level {
            let entry = unsafe nodes.entries[Int(probe) << 8 | Int(address >> (24 - 8 * depth) & 0xFF)]
            if entry & TrieNodes.nodeFlag == 0 {
                if !matches(entry) { return }
                break
            }
            probe = entry & ~TrieNodes.nodeFlag
        }
        var node = try own(state.root, &state)
        state.root = node
        // The path's entries (each the slot pointing at the next node), for folding back up.
        var path: [Int] = []
        for depth in 0..<level {
            let index = Int(node) << 8 | Int(address >> (24 - 8 * depth) & 0xFF)
            let entry = unsafe nodes.entries[index]
            let child: UInt32
            if entry & TrieNodes.nodeFlag != 0 {
                child = try own(entry & ~TrieNodes.nodeFlag, &state)
            } else {
                guard let made = nodes.allocate(filledWith: entry, quiescence: quiescence) else { throw RouteError.tableFull }
                state.fresh.insert(made)
                child = made
            }
            unsafe nodes.entries[index] = TrieNodes.nodeFlag | child
            path.append(index)
            node = child
        }
        let bits = length - 8 * level
        let first = length == 0 ? 0 : Int(address >> (24 - 8 * level) & 0xFF) & ~((1 << (8 - bits)) - 1)
        try paintRange(node, from: first, count: 1 << (8 - bits), &state, value: value, matches: matches)
        // Nodes the change left holding one leaf throughout fold into their parent's entry, as
        // DPDK gives back a tbl8 group: churn does not grow the trie.
        while let index = path.popLast() {
            guard let leaf = uniformLeaf(node) else { break }
            unsafe nodes.entries[index] = leaf
            release(node, &state)
            node = UInt32(index >> 8)
        }
    }

    /// The leaf every entry of `node` holds, nil when they differ or one is a node.
    func uniformLeaf(_ node: UInt32) -> UInt32? {
        let base = unsafe nodes.entries + Int(node) << 8
        let leaf = unsafe base[0]
        guard leaf & TrieNodes.nodeFlag == 0 else { return nil }
        for slot in 1..<256 where unsafe base[slot] != leaf { return nil }
        return leaf
    }

    /// Gives back a node made since the last publication (no snapshot names it: at once).
    func release(_ node: UInt32, _ state: inout State) {
        state.fresh.remove(node)
        nodes.numbers.free.append(node)
    }

    func paintRange(_ node: UInt32, from first: Int, count: Int, _ state: inout State, value: UInt32,
                    matches: (UInt32) -> Bool) throws(RouteError) {
        for slot in first..<(first + count) {
            let index = Int(node) << 8 | slot
            let entry = unsafe nodes.entries[index]
            if entry & TrieNodes.nodeFlag != 0 {
                let child = entry & ~TrieNodes.nodeFlag
                guard holds(child, matches) else { continue }
                let owned = try own(child, &state)
                unsafe nodes.entries[index] = TrieNodes.nodeFlag | owned
                try paintRange(owned, from: 0, count: 256, &state, value: value, matches: matches)
                if let leaf = uniformLeaf(owned) {
                    unsafe nodes.entries[index] = leaf
                    release(owned, &state)
                }
            } else if matches(entry) {
                unsafe nodes.entries[index] = value
            }
        }
    }

    /// Whether the subtree at `node` has a leaf that `matches` (read only).
    func holds(_ node: UInt32, _ matches: (UInt32) -> Bool) -> Bool {
        for slot in 0..<256 {
            let entry = unsafe nodes.entries[Int(node) << 8 | slot]
            if entry & TrieNodes.nodeFlag != 0 {
                if holds(entry & ~TrieNodes.nodeFlag, matches) { return true }
            } else if matches(entry) {
                return true
            }
        }
        return false
    }
}

/// A route change the table refuses.
public enum RouteError: Error, CustomStringConvertible, Equatable, Sendable {
    case exists(Route)
    case notFound(IPv4Prefix)
    /// No route slot or trie node is left (`RouteSlots.capacity` routes).
    case tableFull

    public var description: String {
        switch self {
        case .exists(let route): "route exists: \(route)"
        case .notFound(let prefix): "no such route: \(prefix)"
        case .tableFull: "the routing table is full (no route slot or trie node left)"
        }
    }
}
