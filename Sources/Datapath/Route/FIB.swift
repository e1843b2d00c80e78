import DatapathCore
import DatapathWire
import Logging
import Synchronization

/// The routing table (Linux: the main FIB table, `fib_table_insert` / `fib_table_delete` /
/// `fib_table_lookup`). The control plane changes routes; each change publishes a new immutable
/// `FIBSnapshot` with the next generation number. Workers take the current snapshot once per
/// batch (`snapshot`) and look up in it without a lock.
public final class FIB: @unchecked Sendable {
    struct State {
        /// Per prefix, its routes by ascending metric; the first is the one the snapshot uses.
        var routes: [IPv4Prefix: [Route]] = [:]
        var snapshot: FIBSnapshot
        /// How many `batch` calls are open: while any is, changes wait for one publication.
        var batches = 0
        /// A change was made while batching and is not published yet.
        var unpublished = false
    }

    let state: Mutex<State>
    /// The route-cache epoch (DESIGN.md §6): moves on with every rebuild and every
    /// `invalidateCaches`, after the new snapshot is in place. Read without a lock.
    let epochWord: UnsafeMutablePointer<UInt64>
    /// Where publications are reported (debug level: one per change). Set before workers start.
    public var logger = Logger(label: "datapath.fib", factory: { _ in SwiftLogNoOpLogHandler() })

    public init() {
        state = Mutex(State(snapshot: FIBSnapshot(routes: [], generation: 1)))
        epochWord = .allocate(capacity: 1)
        epochWord.initialize(to: 1)
    }

    deinit { epochWord.deallocate() }

    /// The epoch route caches are valid for now; a worker reads it once per batch.
    @inline(__always)
    public var epoch: UInt64 { SharedWord.load(epochWord) }

    /// Invalidates every route cache without changing a route: something a cached decision
    /// depends on changed (an address, a link's state or MTU, a neighbour entry went away).
    public func invalidateCaches() {
        state.withLock { _ in SharedWord.store(epochWord, SharedWord.load(epochWord) &+ 1) }
    }

    /// The table workers read now: one lock, once per batch.
    public var snapshot: FIBSnapshot { state.withLock { $0.snapshot } }

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
    /// changes nothing. One publication for the lot; the table is changed in place, so adding
    /// one route to a large table costs the rebuild, not a copy of the table.
    public func add(_ routes: [Route]) throws(RouteError) {
        try state.withLock { (state: inout State) throws(RouteError) in
            func clashes(_ route: Route, _ list: [Route]?) -> Bool {
                list?.contains { $0.metric == route.metric && $0.type == route.type } ?? false
            }
            if routes.count == 1 {
                if clashes(routes[0], state.routes[routes[0].prefix]) { throw RouteError.exists(routes[0]) }
            } else {
                var seen: [IPv4Prefix: [Route]] = [:]
                for route in routes {
                    // IPv4Prefix keeps no host bits, so equal prefixes compare equal.
                    if clashes(route, state.routes[route.prefix]) || clashes(route, seen[route.prefix]) {
                        throw RouteError.exists(route)
                    }
                    seen[route.prefix, default: []].append(route)
                }
            }
            for route in routes {
                state.routes[route.prefix, default: []].append(route)
                state.routes[route.prefix]!.sort { $0.metric < $1.metric }
            }
            publish(&state)
        }
    }

    public func add(_ route: Route) throws(RouteError) { try add([route]) }

    /// Removes the route for `prefix` with `metric` (any metric when nil: the best one, as
    /// `ip route del PREFIX` does). Throws when there is none.
    public func remove(_ prefix: IPv4Prefix, metric: UInt32? = nil) throws(RouteError) {
        try state.withLock { (state: inout State) throws(RouteError) in
            guard var list = state.routes[prefix],
                  let index = metric.map({ m in list.firstIndex { $0.metric == m } }) ?? list.indices.first
            else { throw RouteError.notFound(prefix) }
            list.remove(at: index)
            state.routes[prefix] = list.isEmpty ? nil : list
            publish(&state)
        }
    }

    /// Replaces the route for `route.prefix` with `route.metric` (any type), or adds it (Linux:
    /// `ip route replace`, NLM_F_CREATE | NLM_F_REPLACE).
    public func replace(_ route: Route) {
        state.withLock { state in
            var list = state.routes[route.prefix] ?? []
            // The routes addresses bring (Linux keeps them in the local table, which `ip route
            // replace` does not touch) stay.
            list.removeAll { $0.metric == route.metric && $0.type != .local && $0.type != .broadcast }
            list.append(route)
            list.sort { $0.metric < $1.metric }
            state.routes[route.prefix] = list
            publish(&state)
        }
    }

    /// Removes every route `doomed` picks; returns how many went. One publication.
    @discardableResult
    public func removeAll(where doomed: (Route) -> Bool) -> Int {
        state.withLock { state in
            var removed = 0
            for (prefix, list) in state.routes {
                let kept = list.filter { !doomed($0) }
                guard kept.count != list.count else { continue }
                removed += list.count - kept.count
                state.routes[prefix] = kept.isEmpty ? nil : kept
            }
            if removed > 0 { publish(&state) }
            return removed
        }
    }

    /// Removes every route through device `ifindex` (Linux: `fib_sync_down_dev`); a multipath
    /// route loses the next hops through it, and goes when none is left.
    public func removeRoutes(ifindex: Int) {
        state.withLock { state in
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
                state.routes[prefix] = kept.isEmpty ? nil : kept
            }
            publish(&state)
        }
    }

    /// Runs `body` with publication held back: the route changes it makes (through `add`,
    /// `remove`, `removeRoutes`) are published together, once, when the outermost batch ends —
    /// as when the body throws: what it changed before throwing stays, as with one change at a
    /// time. Workers go on reading the snapshot from before the batch until then. A whole
    /// configuration applies as one batch (Linux publishes per rtnetlink message; a table of a
    /// million routes loads here with one rebuild instead of a million).
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
    public var count: Int { state.withLock { $0.routes.values.reduce(0) { $0 + $1.count } } }

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
        let best = state.routes.values.map { $0[0] }
        state.snapshot = FIBSnapshot(routes: best, generation: state.snapshot.generation &+ 1)
        SharedWord.store(epochWord, SharedWord.load(epochWord) &+ 1)
        logger.debug("FIB generation \(state.snapshot.generation) published: \(best.count) routes")
    }
}

/// A route change the table refuses.
public enum RouteError: Error, CustomStringConvertible, Equatable, Sendable {
    case exists(Route)
    case notFound(IPv4Prefix)

    public var description: String {
        switch self {
        case .exists(let route): "route exists: \(route)"
        case .notFound(let prefix): "no such route: \(prefix)"
        }
    }
}
