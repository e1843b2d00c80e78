/// A device transmit queue's queueing discipline (Linux: `pfifo_fast`/`pfifo` with
/// `txqueuelen`): when the device has no room for a batch, what does not fit waits here, in
/// order, up to `limit` packets, and goes out before anything newer; past the limit packets
/// are dropped (`.qdiscDrop`, counted in the device's tx_dropped). Waiting packets are moved
/// out of their receive ring first, so a backlog never holds ring blocks.
///
/// One per (device, transmit queue), used by the one worker that drives that queue; the fast
/// path — an empty queue and a device with room — costs one load.
package final class PfifoQdisc: @unchecked Sendable {
    public let limit: Int
    let slots: UnsafeMutablePointer<SKB>
    /// head @0, count @1, enqueued @2, dropped @3 (raw words: no exclusivity checks).
    let words: UnsafeMutablePointer<Int>

    public init(limit: Int = 1000) {
        self.limit = max(1, limit)
        slots = .allocate(capacity: self.limit)
        words = .allocate(capacity: 4)
        words.initialize(repeating: 0, count: 4)
    }

    deinit {
        slots.deallocate()
        words.deallocate()
    }

    /// Packets waiting (Linux: `backlog` in `tc -s qdisc`).
    @inline(__always)
    public var backlog: Int { words[1] }
    /// Packets that ever waited here, and packets dropped for want of room.
    public var enqueued: Int { words[2] }
    public var dropped: Int { words[3] }

    /// Appends `batch` to the queue (detached from its rings); what does not fit is dropped.
    /// Returns how many were dropped. Empties `batch`.
    func enqueue(_ batch: inout PacketBatch, worker: Worker) -> Int {
        var dropped = 0
        for i in batch.indices {
            guard words[1] < limit else {
                worker.drop(batch[i], .qdiscDrop)
                dropped &+= 1
                continue
            }
            guard let skb = worker.cache.detachFromRing(batch[i]) else {
                worker.drops.count(.noMemory)
                dropped &+= 1
                continue
            }
            slots[(words[0] &+ words[1]) % limit] = skb
            words[1] &+= 1
            words[2] &+= 1
        }
        words[3] &+= dropped
        batch.removeAll()
        return dropped
    }

    /// Takes up to `batch.capacity` waiting packets, oldest first.
    func dequeue(into batch: inout PacketBatch) {
        batch.removeAll()
        while words[1] > 0 && !batch.isFull {
            batch.append(slots[words[0]])
            words[0] = (words[0] &+ 1) % limit
            words[1] &-= 1
        }
    }

    /// Puts back, at the head and in order, packets a dequeue took that the device refused
    /// (Linux: `dev_requeue_skb`). Empties `batch`.
    func requeue(_ batch: inout PacketBatch) {
        for i in stride(from: batch.count - 1, through: 0, by: -1) {
            words[0] = (words[0] &+ limit &- 1) % limit
            slots[words[0]] = batch[i]
            words[1] &+= 1
        }
        batch.removeAll()
    }
}
