import DatapathCore
import DatapathWire

/// How `neighUpdate` may change an entry (Linux: `NEIGH_UPDATE_F_*`).
package struct NeighbourUpdateFlags: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// A different link-layer address replaces the known one.
    public static let override = NeighbourUpdateFlags(rawValue: 1)
    /// A different address on a connected entry does not replace it but makes it STALE.
    package static let weakOverride = NeighbourUpdateFlags(rawValue: 2)
    /// An administrative change: may touch PERMANENT and NOARP entries.
    public static let admin = NeighbourUpdateFlags(rawValue: 4)
}

extension NeighbourTable {
    /// Updates an entry from ARP or the administrator (Linux: `neigh_update`).
    package func update(_ neighbour: Neighbour, linkAddress: MACAddress?, to newState: NeighbourState,
                       flags: NeighbourUpdateFlags, worker: Worker?) {
        _ = state.withLock { table in
            neighUpdate(neighbour, linkAddress: linkAddress, to: newState, flags: flags,
                        now: clock.now(), worker: worker, table: &table)
        }
    }

    /// Under the lock. Publishes the header before the state, so a worker that sees a connected
    /// state always finds the header that goes with it. Returns whether anything changed.
    /// A `worker` is needed to send or drop pending packets; without one, packets of an entry
    /// that became valid wait for the next `runTimers` (Linux sends them at once).
    @discardableResult
    func neighUpdate(_ neighbour: Neighbour, linkAddress: MACAddress?, to requested: NeighbourState,
                     flags: NeighbourUpdateFlags, now: UInt64, worker: Worker?, table: inout TableState) -> Bool {
        let old = neighbour.state
        if neighbour.isDead { return false }
        if !flags.contains(.admin) && old.intersects([.noARP, .permanent]) { return false }

        if !requested.intersects(.valid) {
            neighbour.deadline = nil
            neighbour.publish(requested)
            if old.intersects([.incomplete, .probe]) && requested == .failed, let worker {
                dropPending(neighbour, reason: .neighFailed, worker: worker)
            }
            neighbour.updated = now
            return true
        }

        // An update without an address keeps the known one; there must be one.
        guard var address = linkAddress ?? neighbour.linkAddress else { return false }
        var target = requested
        if old.intersects(.valid), let known = neighbour.linkAddress {
            if address != known && !flags.contains(.override) {
                guard flags.contains(.weakOverride) && old.intersects(.connected) else { return false }
                address = known
                target = .stale
            } else if address == known && target == .stale && !flags.contains(.admin) {
                // Same address, weaker news: a valid entry keeps its state.
                target = old
            }
        }
        if target.intersects(.connected) { neighbour.confirmed = now }
        neighbour.updated = now

        if address != neighbour.linkAddress {
            neighbour.linkAddress = address
            neighbour.publishHeader(destination: address)
            if !target.intersects(.connected) {
                // Not confirmed by this news: make sure the entry is not thought fresh.
                neighbour.confirmed = now &- min(now, 2 &* parameters.baseReachableTime.nanoseconds)
            }
        }
        if target != old {
            neighbour.deadline = nil
            if target.contains(.probe) { neighbour.probes = 0 }
            if target.intersects(.inTimer) {
                neighbour.deadline = now &+ (target.contains(.reachable) ? table.reachableTime : 0)
            }
            neighbour.publish(target)
        }
        if !old.intersects(.valid) {
            if let worker {
                flushPending(neighbour, worker: worker)
            } else if !neighbour.pending.isEmpty {
                table.resolved.append(neighbour)
            }
        }
        return true
    }

    /// Sends the packets that waited for resolution (Linux: the `arp_queue` drain at the end
    /// of `neigh_update`).
    func flushPending(_ neighbour: Neighbour, worker: Worker) {
        guard !neighbour.pending.isEmpty else { return }
        var batch = unsafe flushBatches.batch(worker).pointee.view()
        while !neighbour.pending.isEmpty {
            batch.removeAll()
            neighbour.pending.dequeue(into: &batch)
            neighbour.writeCachedHeaders(&batch, worker: worker)
            core.devQueueXmit(&batch, device: neighbour.device, worker: worker)
        }
        unsafe flushBatches.batch(worker).pointee.removeAll()
    }

    /// Frees every pending packet, counting each under `reason`.
    func dropPending(_ neighbour: Neighbour, reason: DropReason, worker: Worker) {
        neighbour.pending.purge(reason, worker: worker)
    }

    /// Queues `skb` (already in pool memory) while resolving; over `pendingQueueBytes`, the
    /// oldest go, as Linux's `__neigh_event_send` does. (The walk happens only while an entry
    /// resolves, over what it holds.)
    func enqueuePending(_ skb: SKB, on neighbour: Neighbour, worker: Worker) {
        neighbour.pending.enqueue(skb)
        var bytes = neighbour.pending.reduce(0) { $0 + $1.trueSize }
        while bytes > parameters.pendingQueueBytes, let oldest = neighbour.pending.dequeue() {
            bytes -= oldest.trueSize
            worker.drop(oldest, .neighQueueFull)
        }
    }
}

extension NeighbourTable {
    /// Records that an upper layer saw the neighbour answer — e.g. TCP acknowledged new data
    /// (Linux: `neigh_confirm`). A DELAY entry then returns to REACHABLE instead of probing.
    public func confirm(_ neighbour: Neighbour) {
        state.withLock { _ in neighbour.confirmed = clock.now() }
    }
}
