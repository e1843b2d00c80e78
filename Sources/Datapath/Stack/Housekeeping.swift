import DatapathCore
import DatapathWire

extension Stack {
    /// How often housekeeping runs: neighbour timers, bond link monitoring (Linux's default
    /// `miimon` for a bond configured with one), bridge port carrier.
    public static let housekeepingInterval: UInt64 = 100_000_000

    /// Schedules `housekeeping` every 100 ms on the group's worker 0, and fragment expiry once
    /// a second on every worker, before `group.start()`.
    public func start(on group: WorkerGroup) {
        precondition(group.workers.count <= workerCount,
                     "a stack made for \(workerCount) worker(s) driven by a group of \(group.workers.count): " +
                     "make it with Stack(workers: \(group.workers.count))")
        let worker = group.workers[0]
        schedule(on: worker)
        for worker in group.workers { scheduleFragmentExpiry(on: worker) }
    }

    func scheduleFragmentExpiry(on worker: Worker) {
        _ = worker.timers.schedule(after: 1_000_000_000) { [weak self] in
            guard let self else { return }
            self.ipv4.expireFragments(worker: worker)
            self.scheduleFragmentExpiry(on: worker)
        }
    }

    func schedule(on worker: Worker) {
        _ = worker.timers.schedule(after: Stack.housekeepingInterval) { [weak self] in
            guard let self else { return }
            self.housekeeping(worker: worker)
            self.schedule(on: worker)
        }
    }

    /// One round of periodic work, on `worker`: queued control requests, the link monitor
    /// (carrier, MTU, interfaces gone), neighbour timers,
    /// bond link monitors and failover, bridge port carrier, and FDB ageing (Linux:
    /// `neigh_timer_handler`, `bond_mii_monitor`, `br_port_carrier_check`, `br_fdb_cleanup`).
    public func housekeeping(worker: Worker) {
        let requests = control.withLock { queue -> [@Sendable (Worker) -> Void] in
            defer { queue.removeAll() }
            return queue
        }
        for request in requests { request(worker) }
        linkMonitor.check(self)
        neighbours.runTimers(worker: worker)
        for bond in bonds { bond.monitor(worker: worker) }
        let now = clock.now()
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
