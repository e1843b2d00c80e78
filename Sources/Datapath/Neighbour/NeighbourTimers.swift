import DatapathCore
import DatapathWire

extension NeighbourTable {
    /// Runs every due entry's timer, frees what removed entries still held, sends what waited
    /// for an entry the control plane resolved, re-draws the
    /// reachable time every 300 s and collects old FAILED and unused STALE entries (Linux:
    /// `neigh_timer_handler` per entry and `neigh_periodic_work`). Returns how many timers ran.
    /// Called by one worker, whose device queues send the probes.
    @discardableResult
    package func runTimers(worker: Worker) -> Int {
        state.withLock { table in
            let now = clock.now()
            for neighbour in table.dead { dropPending(neighbour, reason: .neighFailed, worker: worker) }
            table.dead.removeAll()
            for neighbour in table.resolved where !neighbour.isDead && neighbour.state.intersects(.valid) {
                flushPending(neighbour, worker: worker)
            }
            table.resolved.removeAll()
            if now >= table.nextRandomization {
                table.reachableTime = NeighbourTable.randomReachableTime(parameters.baseReachableTime.nanoseconds, &table.random)
                table.nextRandomization = now &+ 300_000_000_000
            }
            var fired = 0
            for neighbour in table.entries.values {
                guard let deadline = neighbour.deadline, deadline <= now else { continue }
                timerExpired(neighbour, now: now, worker: worker, table: &table)
                fired += 1
            }
            collectGarbage(in: &table, now: now, force: false)
            return fired
        }
    }

    /// One entry's timer (Linux: `neigh_timer_handler`).
    ///
    /// REACHABLE past its reachable time goes to DELAY if it was used within
    /// `delayFirstProbeTime`, else to STALE. DELAY goes back to REACHABLE if confirmed
    /// meanwhile, else to PROBE. INCOMPLETE and PROBE send their next probe every
    /// `retransmitTime` and become FAILED after `multicastProbes` / `unicastProbes` of them,
    /// dropping what waited.
    func timerExpired(_ neighbour: Neighbour, now: UInt64, worker: Worker, table: inout TableState) {
        var state = neighbour.state
        var next: UInt64? = now &+ parameters.retransmitTime.nanoseconds
        if state.contains(.reachable) {
            if now < neighbour.confirmed &+ table.reachableTime {
                next = neighbour.confirmed &+ table.reachableTime
            } else if now < neighbour.used &+ parameters.delayFirstProbeTime.nanoseconds {
                state = .delay
                neighbour.updated = now
                next = now &+ parameters.delayFirstProbeTime.nanoseconds
            } else {
                state = .stale
                neighbour.updated = now
                next = nil
            }
        } else if state.contains(.delay) {
            if now < neighbour.confirmed &+ parameters.delayFirstProbeTime.nanoseconds {
                state = .reachable
                neighbour.updated = now
                next = neighbour.confirmed &+ table.reachableTime
            } else {
                state = .probe
                neighbour.updated = now
                neighbour.probes = 0
            }
        } else if !state.intersects([.incomplete, .probe]) {
            next = nil
        }
        if state.intersects([.incomplete, .probe]) {
            let limit = state == .incomplete ? parameters.multicastProbes : parameters.unicastProbes
            if neighbour.probes >= limit {
                neighbour.deadline = nil
                neighbour.updated = now
                neighbour.publish(.failed)
                table.statistics.resolutionsFailed += 1
                reportFailure(neighbour, probes: limit, now: now, table: &table)
                dropPending(neighbour, reason: .neighFailed, worker: worker)
                return
            }
        }
        neighbour.deadline = next
        neighbour.publish(state)
        if state.intersects([.incomplete, .probe]) { solicit(neighbour, worker: worker, table: &table) }
    }

    /// Sends one ARP request for the entry (Linux: `arp_solicit`): broadcast while
    /// INCOMPLETE, unicast to the known address while PROBE.
    func solicit(_ neighbour: Neighbour, worker: Worker, table: inout TableState) {
        let unicast = neighbour.state == .probe ? neighbour.linkAddress : nil
        let source = addresses.sourceAddress(for: neighbour.address, ifindex: neighbour.ifindex, worker: worker)
        neighbour.probes += 1
        table.statistics.probesSent += 1
        guard let frame = ARP.makeFrame(operation: .request, device: neighbour.device, senderAddress: source,
                                        targetHardwareAddress: unicast ?? .zero,
                                        targetAddress: neighbour.address,
                                        destination: unicast ?? .broadcast, worker: worker)
        else { return }
        core.devQueueXmit(frame, device: neighbour.device, worker: worker)
    }

    /// Removes FAILED entries and STALE ones unused for `staleTime` — all of them when the
    /// table is full (`force`, Linux: `neigh_forced_gc`), else only those older than
    /// `staleTime` (Linux: `neigh_periodic_work`). PERMANENT entries and entries with a timer
    /// or pending packets stay. Removed entries are marked dead for their holders.
    func collectGarbage(in table: inout TableState, now: UInt64, force: Bool) {
        var doomed: [Key] = []
        for (key, neighbour) in table.entries {
            let state = neighbour.state
            guard state == .failed || state == .stale || state == .none,
                  neighbour.deadline == nil, neighbour.pending.isEmpty else { continue }
            if force || now &- max(neighbour.used, neighbour.updated) >= parameters.staleTime.nanoseconds { doomed.append(key) }
        }
        for key in doomed {
            guard let neighbour = table.entries.removeValue(forKey: key) else { continue }
            neighbour.isDead = true
            neighbour.publish(.none)
            slab.release(neighbour)
            table.statistics.garbageCollected += 1
            table.statistics.destroys += 1
        }
        if !doomed.isEmpty { onRemoval?() }
    }
}

extension NeighbourTable {
    /// Logs an entry gone FAILED — at most one line a second, so that a scan of a subnet does
    /// not flood the log; the line counts the failures left unreported since the last one.
    func reportFailure(_ neighbour: Neighbour, probes: Int, now: UInt64, table: inout TableState) {
        guard table.lastFailureReport == 0 || now &- table.lastFailureReport >= 1_000_000_000 else {
            table.unreportedFailures += 1
            return
        }
        let others = table.unreportedFailures
        table.lastFailureReport = now
        table.unreportedFailures = 0
        let more = others > 0 ? " (and \(others) more since the last report)" : ""
        logger.notice("neighbour \(neighbour.address) dev \(neighbour.device.name) FAILED: no answer to \(probes) probes\(more)")
    }
}
