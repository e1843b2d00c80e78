import DatapathCore
import DatapathWire

extension NeighbourTable {
    /// Sends a batch of IPv4 packets (`data` at the IPv4 header) to one neighbour (Linux:
    /// `neigh_output`). REACHABLE, PERMANENT and NOARP entries take the lock-free path: the
    /// cached header is copied in front of each packet (`neigh_hh_output`) and the batch goes to
    /// `devQueueXmit`. Any other state takes `resolveOutput`.
    ///
    /// Reads: the entry's state word and cached header. Writes: prepends 14 bytes.
    /// Next: `devQueueXmit` on the entry's device, or the pending queue.
    /// Drops: `.neighQueueFull`, `.neighFailed`, `.noMemory`, and the device's drops.
    @inlinable
    public func output(_ batch: inout PacketBatch, via neighbour: Neighbour, worker: Worker) {
        guard !batch.isEmpty else { return }
        if neighbour.currentState.intersects(.connected) {
            neighbour.writeCachedHeaders(&batch, worker: worker)
            core.devQueueXmit(&batch, device: neighbour.device, worker: worker)
            return
        }
        resolveOutput(&batch, via: neighbour, worker: worker)
    }

    /// The slow output path (Linux: `neigh_resolve_output` → `neigh_event_send`): STALE
    /// becomes DELAY and sends; DELAY and PROBE send; NONE and FAILED start resolving
    /// (INCOMPLETE, first broadcast probe now); while INCOMPLETE packets wait, moved out of
    /// their ring into pool memory, at most `pendingQueueBytes` of them.
    @usableFromInline package func resolveOutput(_ batch: inout PacketBatch, via neighbour: Neighbour, worker: Worker) {
        let start = cycleCount()
        let packets = batch.count
        let send = state.withLock { table -> Bool in
            let now = clock.now()
            neighbour.used = now
            if neighbour.isDead {
                worker.drop(&batch, .neighFailed)
                return false
            }
            let current = neighbour.state
            if current.intersects([.permanent, .noARP, .reachable, .delay, .probe]) { return true }
            if current == .stale {
                neighbour.updated = now
                neighbour.deadline = now &+ parameters.delayFirstProbeTime.nanoseconds
                neighbour.publish(.delay)
                return true
            }
            for i in batch.indices {
                if let kept = worker.cache.detachFromRing(batch[i]) {
                    enqueuePending(kept, on: neighbour, worker: worker)
                } else {
                    worker.drops.count(.noMemory)
                }
            }
            batch.removeAll()
            if current != .incomplete { startResolving(neighbour, now: now, worker: worker, table: &table) }
            return false
        }
        if send {
            neighbour.writeCachedHeaders(&batch, worker: worker)
            core.devQueueXmit(&batch, device: neighbour.device, worker: worker)
        }
        worker.stages.record(resolveStage, packets: packets, cycles: cycleCount() &- start)
    }

    /// Resolves `address` on `device` without a packet to send: creates the entry if needed and
    /// starts probing unless it is already valid or resolving. Returns the entry, or nil when
    /// the table is full.
    @discardableResult
    public func resolve(_ address: IPv4Address, device: any NetDevice, worker: Worker) -> Neighbour? {
        state.withLock { table -> Neighbour? in
            guard let neighbour = create(address, device: device, in: &table) else { return nil }
            let current = neighbour.state
            if current == .none || current == .failed {
                let now = clock.now()
                neighbour.used = now
                startResolving(neighbour, now: now, worker: worker, table: &table)
            }
            return neighbour
        }
    }

    /// NONE or FAILED → INCOMPLETE, first broadcast probe now, the next after `retransmitTime`
    /// (Linux: the `!(nud_state & (NUD_STALE | NUD_INCOMPLETE))` branch of `__neigh_event_send`).
    func startResolving(_ neighbour: Neighbour, now: UInt64, worker: Worker, table: inout TableState) {
        neighbour.probes = 0
        neighbour.updated = now
        neighbour.deadline = now &+ parameters.retransmitTime.nanoseconds
        neighbour.publish(.incomplete)
        solicit(neighbour, worker: worker, table: &table)
    }
}
