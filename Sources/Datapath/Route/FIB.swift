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

    /// Adds routes (Linux: `ip route add`, with NLM_F_EXCL): all or none — a route whose prefix,
    /// metric and type are already present throws and changes nothing. One rebuild for the lot.
    public func add(_ routes: [Route]) throws(RouteError) {
        try state.withLock { (state: inout State) throws(RouteError) in
            var table = state.routes
            for route in routes {
                // IPv4Prefix keeps no host bits, so equal prefixes compare equal.
                var list = table[route.prefix] ?? []
                if list.contains(where: { $0.metric == route.metric && $0.type == route.type }) {
                    throw RouteError.exists(route)
                }
                list.append(route)
                list.sort { $0.metric < $1.metric }
                table[route.prefix] = list
            }
            state.routes = table
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

    /// Removes every route through device `ifindex` (Linux: `fib_sync_down_dev`).
    public func removeRoutes(ifindex: Int) {
        state.withLock { state in
            for (prefix, list) in state.routes {
                let kept = list.filter { $0.ifindex != ifindex }
                state.routes[prefix] = kept.isEmpty ? nil : kept
            }
            publish(&state)
        }
    }

    func publish(_ state: inout State) {
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
