import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// When memory workers may still be reading can be reused (Linux: RCU's grace periods, in the
/// quiescent-state-based flavour — `rcu_read_lock` costs nothing because a worker between two
/// batches holds no reference at all).
///
/// Each worker reports a quiescent state between batches (`WorkerGroup`'s loop does, once per
/// round) and goes offline while it sleeps. The control plane retires something — a neighbour
/// slot, a replaced table — and gets a ticket; once `hasElapsed(ticket)` is true, every worker
/// has passed a quiescent state since, so none can still hold what was retired.
///
/// A worker that never reports (a stand-alone worker driven inline, in tests and benchmarks)
/// counts as offline: it runs on the control plane's thread, between its calls.
public final class Quiescence: @unchecked Sendable {
    /// The current grace-period number; a retirement moves it on.
    let epoch = Atomic<UInt64>(1)
    /// Per worker index: the epoch it saw at its last quiescent state, `.max` while offline.
    let observed: UnsafeMutablePointer<UInt64>
    let capacity: Int

    public init(workers: Int = NetCore.maximumWorkers) {
        capacity = workers
        observed = .allocate(capacity: workers)
        observed.initialize(repeating: .max, count: workers)
    }

    deinit { observed.deallocate() }

    // MARK: Workers

    /// `worker` holds no reference into shared structures now (Linux: `rcu_qs`); between batches.
    @inline(__always)
    public func quiescent(_ worker: Worker) {
        precondition(worker.index < capacity, "worker beyond the quiescence domain")
        let current = epoch.load(ordering: .sequentiallyConsistent)
        // Nothing retired since the last one: a grace period that starts later waits for a
        // later quiescent state anyway, so neither the store nor the fence is needed — and
        // the worker does not pull its word back from a control plane polling it.
        if SharedWord.load(observed + worker.index) == current { return }
        SharedWord.store(observed + worker.index, current)
        // Store, then a full fence, then the batch's reads (urcu-qsbr's online: smp_mb). Either
        // a retiring thread sees this store, or this worker's reads see what it retired.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// `worker` is about to sleep holding nothing: grace periods need not wait for it.
    @inline(__always)
    public func offline(_ worker: Worker) {
        precondition(worker.index < capacity, "worker beyond the quiescence domain")
        SharedWord.store(observed + worker.index, .max)
    }

    // MARK: Control plane

    /// Starts a grace period for something just made unreachable: the ticket to wait for.
    public func retire() -> UInt64 {
        epoch.add(1, ordering: .sequentiallyConsistent).newValue
    }

    /// Whether every worker has passed a quiescent state (or was offline) since `ticket` was
    /// issued: what was retired then is no longer referenced by any worker.
    public func hasElapsed(_ ticket: UInt64) -> Bool {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        for i in 0..<capacity where SharedWord.load(observed + i) < ticket { return false }
        return true
    }

    /// Waits until a grace period that starts now has elapsed (Linux: `synchronize_rcu`),
    /// checking every 50 µs: afterwards no worker holds what was unpublished before the call.
    /// Control plane only — on a worker's own thread it would wait for itself.
    public func synchronize() {
        let ticket = retire()
        while !hasElapsed(ticket) { usleep(50) }
    }
}
