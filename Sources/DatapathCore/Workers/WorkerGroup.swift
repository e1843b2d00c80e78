import CDatapath
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The per-CPU workers (Linux: one NAPI/softirq context per CPU). Each worker is a serial
/// DispatchQueue whose loop pins its thread to a CPU, polls the device queues assigned to it,
/// steers by flow to the owning worker (RPS) when asked, drains its backlog, delivers batches
/// and runs its timers and the tasklets other threads scheduled on it.
///
/// Event mode (the default) sleeps in poll(2) on the rings' descriptors when idle; busy-poll
/// mode never sleeps, and belongs only on a core nothing else needs.
public final class WorkerGroup: @unchecked Sendable {
    public enum Mode: Sendable { case event, busyPoll }

    /// What a worker does with a received batch; it must consume every skb.
    public typealias ReceiveAction = @Sendable (inout PacketBatch, Worker) -> Void

    public let workers: [Worker]
    public let core: NetCore
    public let mode: Mode
    public let backlog: Backlog?
    let pin: Bool
    let queues: [DispatchQueue]
    let assignments: Lock<[[(device: any NetDevice, queue: Int)]]>
    let running = Atomic<Bool>(false)
    let finished = DispatchGroup()
    let action: Lock<ReceiveAction?>

    /// Creates `count` workers over `pool`. CPUs are assigned round-robin over the CPUs the
    /// process may run on (its affinity mask: `taskset -c 2,3 datapath …` puts worker 0 on
    /// CPU 2) when `pin` is true. `rps` steers each received packet to the worker that owns its flow.
    public convenience init(core: NetCore, pool: PacketPool, count: Int, pin: Bool = true, mode: Mode = .event,
                            rps: Bool = false, cpus: [Int]? = nil, clock: any DatapathClock = MonotonicClock()) {
        self.init(core: core, pools: [pool], count: count, pin: pin, mode: mode, rps: rps, cpus: cpus, clock: clock)
    }

    /// Creates `count` workers, each allocating from the pool of its CPU's NUMA node
    /// (`pools` as `PacketPool.perNode` makes them; the first pool when none matches).
    /// `cpus`, when given, replaces the affinity mask as the CPUs the workers take round-robin
    /// (VPP's `corelist-workers`): the threads that are not workers — the control plane — keep
    /// the process's mask, so `taskset -c 0 datapath forward --worker-cpus 1` keeps them off
    /// the worker's CPU.
    public init(core: NetCore, pools: [PacketPool], count: Int, pin: Bool = true, mode: Mode = .event,
                rps: Bool = false, cpus chosen: [Int]? = nil, clock: any DatapathClock = MonotonicClock()) {
        precondition(!pools.isEmpty, "a worker group needs at least one pool")
        precondition(chosen?.isEmpty != true, "an empty CPU list for the workers")
        var allowed = [Int32](repeating: 0, count: 1024)
        let found = Int(CDatapath_allowed_cpus(&allowed, 1024))
        let cpus = chosen ?? (found > 0 ? allowed.prefix(found).map(Int.init) : Array(0..<Int(CDatapath_cpu_count())))
        self.core = core
        self.mode = mode
        self.pin = pin
        self.workers = (0..<count).map { index in
            let cpu = cpus[index % cpus.count]
            let node = PacketPool.node(ofCPU: cpu)
            let pool = pools.first { $0.node == node } ?? pools[0]
            return Worker(index: index, cpu: pin ? cpu : nil, pool: pool, clock: clock)
        }
        self.queues = (0..<count).map { DispatchQueue(label: "datapath.worker.\($0)", qos: .userInteractive) }
        self.assignments = Lock(Array(repeating: [], count: count))
        self.backlog = rps && count > 1 ? Backlog(workers: count) : nil
        self.action = Lock(nil)
    }

    /// Parses a CPU list as `taskset -c` and the kernel's cpulist files write it ("0,2-3,7");
    /// nil for anything else, an empty list, a reversed range or a CPU this machine does not
    /// have.
    public static func cpuList(_ text: String) -> [Int]? {
        let count = Int(CDatapath_cpu_count())
        var cpus: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(ends.count), let low = ends.first!, let high = ends.last!,
                  low >= 0, low <= high, high < count else { return nil }
            cpus += low...high
        }
        return cpus.isEmpty ? nil : cpus
    }

    /// Has worker `index` poll `device`'s `queue` (before `start`).
    public func poll(_ device: any NetDevice, queue: Int, on index: Int) {
        assignments.withLock { $0[index].append((device, queue)) }
    }

    /// Spreads every queue of `devices` over the workers: queue q goes to worker q % count.
    public func pollAllQueues(of devices: [any NetDevice]) {
        for device in devices {
            for queue in 0..<device.queueCount { poll(device, queue: queue, on: queue % workers.count) }
        }
    }

    /// Starts the loops. `action` defaults to `core.netifReceiveSkb`.
    public func start(_ action: ReceiveAction? = nil) {
        let core = self.core
        core.freezeRegistries()
        self.action.withLock { $0 = action ?? { batch, worker in core.netifReceiveSkb(&batch, worker: worker) } }
        running.store(true, ordering: .releasing)
        // What each loop needs is read here, under the locks, and handed to it: the workers
        // never take these locks (the loops need nothing they guard later).
        let polls = assignments.withLock { $0 }
        let deliver = self.action.withLock { $0 }
        for (i, queue) in queues.enumerated() {
            finished.enter()
            let assigned = polls[i]
            queue.async { [self] in
                loop(workers[i], polls: assigned, deliver: deliver)
                finished.leave()
            }
        }
    }

    /// Stops the loops and waits for them to finish their current batch.
    public func stop() {
        running.store(false, ordering: .releasing)
        finished.wait()
    }

    public var isRunning: Bool { running.load(ordering: .acquiring) }

    func loop(_ worker: Worker, polls: [(device: any NetDevice, queue: Int)], deliver: ReceiveAction?) {
        if pin, let cpu = worker.cpu { _ = CDatapath_pin_current_thread(Int32(cpu)) }
        guard let deliver else { return }
        var descriptors = polls.compactMap { $0.device.pollDescriptor(queue: $0.queue) }
        // In-memory devices (no ring descriptor) and RPS backlogs are re-polled, not waited on.
        let sleepsInPoll = !descriptors.isEmpty && backlog == nil
        let doorbellIndex = descriptors.count
        if worker.tasklets.doorbell >= 0 { descriptors.append(worker.tasklets.doorbell) }
        var ready = [UInt8](repeating: 0, count: max(1, descriptors.count))
        var batch = PacketBatch()
        let quiescence = core.quiescence
        defer { quiescence.offline(worker) }
        while running.load(ordering: .relaxed) {
            quiescence.quiescent(worker)
            var work = 0
            for (device, queue) in polls {
                let n = device.receive(queue: queue, into: &batch, max: PacketBatch.maximumCount, worker: worker)
                guard n > 0 else { continue }
                work &+= n
                backlog?.steer(&batch, from: worker)
                if !batch.isEmpty { deliver(&batch, worker) }
                if !batch.isEmpty { worker.drop(&batch, .notSpecified) }
            }
            if let backlog, backlog.drain(for: worker, into: &batch) > 0 {
                work &+= batch.count
                deliver(&batch, worker)
                if !batch.isEmpty { worker.drop(&batch, .notSpecified) }
            }
            work &+= worker.tasklets.run(worker)
            worker.timers.run()
            core.runQdiscs(worker: worker)
            // Only a sleep in poll(2) needs the doorbell: a 50 µs nap comes round by itself.
            if work == 0 && mode == .event && (!sleepsInPoll || worker.tasklets.prepareToSleep()) {
                quiescence.offline(worker)
                if doorbellIndex < ready.count { ready[doorbellIndex] = 0 }
                idle(worker, descriptors: descriptors, ready: &ready, sleepsInPoll: sleepsInPoll)
                worker.tasklets.awake(rung: doorbellIndex < descriptors.count && ready[doorbellIndex] != 0)
            }
        }
        worker.cache.drainAll()
    }

    /// Sleeps until a ring is readable, the doorbell rings (a tasklet was scheduled), the next
    /// timer is due, or 10 ms pass; in-memory devices (no ring descriptor) and RPS backlogs are
    /// re-polled every 50 µs.
    func idle(_ worker: Worker, descriptors: [Int32], ready: inout [UInt8], sleepsInPoll: Bool) {
        var timeout: Int32 = core.hasQdiscBacklog(worker: worker) ? 1 : 10
        if let deadline = worker.timers.nextDeadline {
            let now = worker.clock.now()
            timeout = deadline <= now ? 0 : min(timeout, Int32(min(10, (deadline - now) / 1_000_000)))
        }
        if !sleepsInPoll {
            usleep(50)
            return
        }
        _ = descriptors.withUnsafeBufferPointer { fds in
            CDatapath_poll_in(fds.baseAddress, Int32(fds.count), timeout, &ready)
        }
    }
}
