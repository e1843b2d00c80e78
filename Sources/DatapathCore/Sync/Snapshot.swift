import Synchronization

/// A table workers read while the control plane replaces it (Linux: an RCU-protected pointer —
/// `rcu_assign_pointer` to publish, `rcu_dereference` to read): hook lists, filter rules,
/// interface addresses, sysctls. The control plane builds a new immutable value and publishes
/// it with the next generation number; a worker reads through its own cached copy, which it
/// refreshes only when the generation moved on — one atomic load and one compare per read, no
/// lock, no reference counting on the worker's path.
///
/// What may change while workers run: any `Snapshot` (by publication). What may not: the
/// registries (packet types, rx_handlers, protocol handlers, hook slots), fixed before workers
/// start.
///
/// An old value stays alive until every worker that read it has read a newer one — the grace
/// period is "the worker's next read" — so publishing never waits for workers.
public final class Snapshot<Value: Sendable>: @unchecked Sendable {
    @usableFromInline
    struct Cached {
        @usableFromInline var generation: UInt64
        @usableFromInline var value: Value
    }

    struct Published {
        var value: Value
        var generation: UInt64
    }

    let published: Lock<Published>
    /// The generation of the published value; written under the lock, read by workers without.
    @usableFromInline let generationWord: UnsafeMutablePointer<UInt64>
    @usableFromInline let cached: WorkerLocal<Cached>

    /// A snapshot of `value` (generation 1) that `workers` workers read.
    public init(_ value: Value, workers: Int) {
        published = Lock(Published(value: value, generation: 1))
        generationWord = .allocate(capacity: 1)
        generationWord.initialize(to: 1)
        cached = WorkerLocal(workers: max(1, workers)) { _ in Cached(generation: 1, value: value) }
    }

    deinit { generationWord.deallocate() }

    // MARK: Workers

    /// The current value as `worker` sees it: its cached copy, refreshed when a newer value was
    /// published since its last read.
    @inlinable @inline(__always)
    public func read(_ worker: Worker) -> Value {
        let generation = SharedWord.load(generationWord)
        if cached[worker].generation != generation { refresh(worker) }
        return cached[worker].value
    }

    @usableFromInline @inline(never)
    func refresh(_ worker: Worker) {
        let current = published.withLock { ($0.value, $0.generation) }
        cached[worker] = Cached(generation: current.1, value: current.0)
    }

    // MARK: Control plane

    /// The published value (a lock; for the control plane and threads that are not workers).
    public var value: Value { published.withLock { $0.value } }

    /// Moves on with every publication.
    public var generation: UInt64 { SharedWord.load(generationWord) }

    /// Publishes `value`; workers see it from their next read.
    public func publish(_ value: Value) {
        update { $0 = value }
    }

    /// Changes a copy of the published value and publishes it, all or nothing: when `body`
    /// throws, nothing is published. Updates are serialised.
    @discardableResult
    public func update<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try published.withLock { (published: inout Published) throws(E) -> R in
            var value = published.value
            let result = try body(&value)
            published.value = value
            published.generation &+= 1
            SharedWord.store(generationWord, published.generation)
            return result
        }
    }
}
