import CDatapath
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Work another thread asks one worker to do at its next loop round (Linux: `struct
/// tasklet_struct` with `tasklet_schedule` and `tasklet_action`): an app task hands a socket
/// datagrams to send, and the socket's worker — which owns the TX queue and the route cache —
/// sends them. Scheduling an already scheduled tasklet does nothing (Linux's
/// `TASKLET_STATE_SCHED`), so a burst of requests costs one run; the flag is cleared just before
/// the action runs, so a request that comes in during the run schedules it again.
///
/// The action is set once, at creation: scheduling allocates nothing.
public final class Tasklet: @unchecked Sendable {
    /// The worker the action runs on.
    public let workerIndex: Int
    let list: TaskletList
    let scheduled = Atomic<Bool>(false)
    let action: @Sendable (Worker) -> Void

    /// A tasklet run on `worker` (any thread may schedule it).
    public init(on worker: Worker, _ action: @escaping @Sendable (Worker) -> Void) {
        workerIndex = worker.index
        list = worker.tasklets
        self.action = action
    }

    /// Asks the worker to run the action at its next round; wakes it if it sleeps. Any thread.
    public func schedule() {
        guard !scheduled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        list.add(self)
    }

    /// Whether a run is pending.
    public var isScheduled: Bool { scheduled.load(ordering: .relaxed) }
}

/// One worker's scheduled tasklets and its doorbell (Linux: `softnet_data`'s tasklet list and
/// the IPI/`raise_softirq` that wakes the CPU). A worker checks one flag per loop round; a
/// sleeping worker is woken through an eventfd in its poll set, written only when the worker
/// said it was about to sleep (a store-fence-load handshake on both sides, so no request is
/// left waiting for the 10 ms poll timeout).
public final class TaskletList: @unchecked Sendable {
    let queue = Lock<[Tasklet]>([])
    let pending = Atomic<Bool>(false)
    let sleeping = Atomic<Bool>(false)
    /// An eventfd (non-blocking), -1 when none could be made (then a sleeping worker notices
    /// within its poll timeout).
    public let doorbell: Int32
    /// The worker's copy of the queue while it runs it (no allocation once warm).
    var running: [Tasklet] = []

    init() {
        let fd = CDatapath_eventfd_open()
        doorbell = fd >= 0 ? fd : -1
        running.reserveCapacity(16)
        queue.withLock { $0.reserveCapacity(16) }
    }

    deinit {
        if doorbell >= 0 { Glibc.close(doorbell) }
    }

    func add(_ tasklet: Tasklet) {
        queue.withLock { $0.append(tasklet) }
        pending.store(true, ordering: .releasing)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if sleeping.load(ordering: .relaxed) { ring() }
    }

    func ring() {
        if doorbell >= 0 { CDatapath_eventfd_signal(doorbell) }
    }

    /// Runs every scheduled tasklet once, on `worker` (its own thread); returns how many ran.
    /// One relaxed load when none is scheduled.
    @inline(__always) @discardableResult
    public func run(_ worker: Worker) -> Int {
        guard pending.load(ordering: .relaxed) else { return 0 }
        return runSlow(worker)
    }

    func runSlow(_ worker: Worker) -> Int {
        pending.store(false, ordering: .relaxed)
        queue.withLock { swap(&$0, &running) }
        let count = running.count
        for tasklet in running {
            tasklet.scheduled.store(false, ordering: .sequentiallyConsistent)
            tasklet.action(worker)
        }
        running.removeAll(keepingCapacity: true)
        return count
    }

    /// The worker is about to sleep: true when it may (nothing was scheduled meanwhile). Pair
    /// with `awake()` after the sleep.
    func prepareToSleep() -> Bool {
        sleeping.store(true, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if pending.load(ordering: .relaxed) {
            sleeping.store(false, ordering: .relaxed)
            return false
        }
        return true
    }

    /// The worker woke: it no longer needs ringing; a ring that came is taken off the eventfd.
    func awake(rung: Bool) {
        sleeping.store(false, ordering: .relaxed)
        if rung && doorbell >= 0 { CDatapath_eventfd_clear(doorbell) }
    }
}
