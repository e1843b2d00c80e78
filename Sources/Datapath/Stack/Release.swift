import DatapathCore

extension Stack {
    /// Frees every packet the stack still holds once its workers have stopped — the qdiscs'
    /// backlogs, neighbours' pending queues, datagrams in reassembly, what waits on lo, corked
    /// datagrams — as Linux frees them when the interfaces go down at shutdown (`qdisc_reset`,
    /// `neigh_ifdown`, `ipfrag` teardown). Sockets free their own queues when closed. After it
    /// (and after the programs' sockets are closed) every pool is back at its baseline: what
    /// is still in use then was lost. `workers` are the stopped workers that served the stack;
    /// each worker's reassembly is freed into its own cache. Returns how many packets it freed.
    @discardableResult
    public func releaseHeldPackets(workers: [Worker]) -> Int {
        guard let first = workers.first else { return 0 }
        var freed = core.releaseQdiscs(worker: first)
        for part in parts { freed += part.releaseHeld(workers: workers) }
        if let lo = unsafe core.devices[ipv4.loopbackIfindex] as? LoopbackDevice { freed += lo.release(worker: first) }
        for worker in workers { worker.cache.drainAll() }
        return freed
    }
}

extension NeighbourTable {
    /// Frees the packets every entry (live or removed) holds waiting for resolution.
    func releasePending(worker: Worker) -> Int {
        state.withLock { table in
            var freed = 0
            for neighbour in Array(table.entries.values) + table.dead {
                freed += neighbour.pending.count
                neighbour.pending.free(worker: worker)
            }
            return freed
        }
    }
}

extension IPv4 {
    /// Frees the datagrams in reassembly on `worker` (not counted as failures: the stack is
    /// shutting down). Returns how many fragments it freed.
    func releaseFragments(worker: Worker) -> Int {
        let table = state(worker).fragmentQueues
        guard table.live > 0 else { return 0 }
        var freed = 0
        for index in 0...table.mask where unsafe table.queues[index].inUse {
            unsafe freed += table.queues[index].fragments.count
            release(index, table, worker: worker)
        }
        return freed
    }
}

extension UDPCorks {
    /// Frees every pending datagram. Returns how many.
    func discardAll() -> Int {
        let ids = state.withLock { Array($0.pending.keys) }
        return ids.reduce(0) { $0 + (discard($1) ? 1 : 0) }
    }
}
