import DatapathCore
import DatapathWire

extension Stack {
    /// How often housekeeping runs: neighbour timers, bond link monitoring (Linux's default
    /// `miimon` for a bond configured with one), bridge port carrier.
    public static let housekeepingInterval: Duration = .milliseconds(100)

    /// Schedules `housekeeping` every 100 ms on the group's worker 0, and fragment expiry once
    /// a second on every worker, before `group.start()`: embedded timers on each worker's wheel.
    public func start(on group: WorkerGroup) {
        precondition(group.workers.count <= workerCount,
                     "a stack made for \(workerCount) worker(s) driven by a group of \(group.workers.count): " +
                     "make it with Stack(workers: \(group.workers.count))")
        for worker in group.workers {
            let timers = StackTimers(stack: self, worker: worker)
            timers.arm(housekeeping: worker.index == 0)
        }
        attach(group.workers)
    }

    /// Records the workers that serve the stack, so that sockets made from other threads
    /// (`UDPSocket`) know where to send from. `start(on:)` does it; a program or test that
    /// drives stand-alone workers itself calls it, and runs their `tasklets` itself.
    public func attach(_ workers: [Worker]) {
        precondition(workers.allSatisfy { $0.index < workerCount },
                     "a worker index outside the stack's \(workerCount) worker(s)")
        attachedWorkers.withLock { $0 = workers }
        if let first = workers.first { igmp.attach(first) }
    }

    /// The worker a socket with `id` sends from (ids spread the sockets over the workers).
    func homeWorker(for id: UInt32) -> Worker? {
        attachedWorkers.withLock { $0.isEmpty ? nil : $0[Int(id % UInt32($0.count))] }
    }

    /// One round of periodic work, on `worker`: queued control requests, the link monitor
    /// (carrier, MTU, interfaces gone), each part's share (`StackPart.housekeeping`: neighbour
    /// timers, path-MTU exceptions past their time), bond link monitors and failover, bridge
    /// port carrier, and FDB ageing (Linux:
    /// `neigh_timer_handler`, `bond_mii_monitor`, `br_port_carrier_check`, `br_fdb_cleanup`).
    public func housekeeping(worker: Worker) {
        let requests = control.withLock { queue -> [@Sendable (Worker) -> Void] in
            defer { queue.removeAll() }
            return queue
        }
        for request in requests { request(worker) }
        linkMonitor.check(self)
        let now = clock.now()
        for part in parts { part.housekeeping(worker: worker, now: now) }
        for bond in bonds {
            let before = bond.activeSlave
            guard bond.monitor(worker: worker) || bond.activeSlave !== before else { continue }
            if let now = bond.activeSlave {
                logger.notice("\(bond.name): \(now.device.name) is the active slave now\(before.map { " (was \($0.device.name))" } ?? "")")
            } else {
                logger.warning("\(bond.name): no slave has link; the bond drops what it sends")
            }
        }
        for bridge in bridges {
            for port in bridge.ports { port.hasCarrier = port.device.isUp }
            bridge.fdb.age(now: now)
        }
    }

    /// Runs `request` on worker 0 at its next housekeeping round (within 100 ms once started):
    /// the way for other threads to act as a worker, e.g. to start resolving an address.
    public func perform(_ request: @escaping @Sendable (Worker) -> Void) {
        control.withLock { $0.append(request) }
    }
}

/// The stack's periodic work on one worker, as embedded timers on its wheel (Linux: the
/// `timer_list`s behind `neigh_periodic_work`, `bond_mii_monitor`, `ip_expire`): the wheel
/// keeps this handler; it keeps the stack weakly, so the timers stop once the stack is gone.
final class StackTimers: TimerHandler {
    weak var stack: Stack?
    /// The worker whose wheel holds this handler (and so outlives it).
    unowned let worker: Worker
    var housekeeping = WheelTimer(kind: .unregistered)
    var fragmentExpiry = WheelTimer(kind: .unregistered)

    static let housekeepingContext: UInt64 = 0
    static let fragmentExpiryContext: UInt64 = 1
    /// How often each worker gives up datagrams past their reassembly deadline.
    static let fragmentExpiryInterval = Duration.seconds(1)

    init(stack: Stack, worker: Worker) {
        self.stack = stack
        self.worker = worker
        let kind = worker.timers.register(self)
        housekeeping = WheelTimer(kind: kind, context: StackTimers.housekeepingContext)
        fragmentExpiry = WheelTimer(kind: kind, context: StackTimers.fragmentExpiryContext)
    }

    func arm(housekeeping withHousekeeping: Bool) {
        if withHousekeeping { worker.timers.arm(&housekeeping, after: Stack.housekeepingInterval) }
        worker.timers.arm(&fragmentExpiry, after: StackTimers.fragmentExpiryInterval)
    }

    func timerFired(_ kind: TimerKind, context: UInt64, wheel: TimerWheel) {
        guard let stack else { return }
        switch context {
        case StackTimers.housekeepingContext:
            stack.housekeeping(worker: worker)
            wheel.arm(&housekeeping, after: Stack.housekeepingInterval)
        default:
            stack.ipv4.expireFragments(worker: worker)
            wheel.arm(&fragmentExpiry, after: StackTimers.fragmentExpiryInterval)
        }
    }
}
