import DatapathCore
import Synchronization

/// A socket's receive queue between the workers that receive for it and the app that reads it
/// (Linux: `sk_receive_queue` with `sk_rmem_alloc` bounded by `sk_rcvbuf`, and `sk_data_ready`
/// waking the reader).
///
/// One single-producer ring per worker (Core's `SPSCRing`), so a worker enqueues without a lock
/// and without contending with the others; the reader takes from them in turn. Each queued skb
/// counts its true size (its buffer and head, as Linux's `truesize`) against the receive
/// buffer; a datagram that arrives while the queue is over it is dropped (the caller counts
/// `RcvbufErrors`), as `__udp_enqueue_schedule_skb` does. Queued skbs live in pool memory,
/// never in a ring block (`PoolCache.detachFromRing` first, DESIGN.md §3), so a slow reader
/// cannot freeze a receive ring.
///
/// A reader that finds the queue empty sleeps on its `SocketWaitQueue`; a worker that enqueued
/// wakes it (one fence per batch when nobody waits).
package final class SocketReceiveQueue: @unchecked Sendable {
    let rings: [SPSCRing]
    let queuedBytes = Atomic<Int>(0)
    let limit: Atomic<Int>
    let closed = Atomic<Bool>(false)
    let readers = SocketWaitQueue()
    /// The reader's side: the ring to take from next, and the cache the reader frees into.
    let reader: Lock<Reader>

    struct Reader: ~Copyable {
        var next = 0
        let cache: PoolCache
    }

    /// A queue written by `workers` workers, holding up to `size` bytes of true size; the
    /// reader frees what it has read into a cache of `pool`.
    public init(workers: Int, size: Int = SocketBufferDefaults.receive, pool: PacketPool) {
        let slots = SocketReceiveQueue.ringCapacity(forBytes: size)
        rings = (0..<max(1, workers)).map { _ in SPSCRing(capacity: slots) }
        limit = Atomic(size)
        reader = Lock(Reader(cache: pool.makeCache(capacity: 128, batch: 32)))
    }

    /// The receive buffer in bytes of true size (Linux: `SO_RCVBUF`, without its doubling).
    public var size: Int {
        get { limit.load(ordering: .relaxed) }
        set { limit.store(max(2048, newValue), ordering: .relaxed) }
    }

    /// Bytes of true size queued now.
    public var queued: Int { queuedBytes.load(ordering: .relaxed) }

    /// Slots for a socket queue ring of a `bytes` buffer: enough for the whole buffer in small
    /// datagrams (512 bytes of true size each), 64 to 65536, a power of two. The ring keeps its
    /// size when the buffer is changed later.
    static func ringCapacity(forBytes bytes: Int) -> Int {
        var slots = 64
        while slots < bytes / 512 && slots < 1 << 16 { slots <<= 1 }
        return slots
    }

    // MARK: Workers

    /// Queues `skb` on `worker`'s ring (Linux: `__udp_enqueue_schedule_skb`); false when the
    /// queue is over its buffer, full or closed — the skb is then the caller's still. The skb
    /// must be in pool memory already.
    @inline(__always)
    func enqueue(_ skb: SKB, worker: Worker) -> Bool {
        guard queuedBytes.load(ordering: .relaxed) <= limit.load(ordering: .relaxed),
              !closed.load(ordering: .relaxed) else { return false }
        guard unsafe rings[worker.index].enqueue(UnsafeMutableRawPointer(skb.head)) else { return false }
        queuedBytes.add(skb.trueSize, ordering: .relaxed)
        return true
    }

    /// Wakes a waiting reader after a worker's enqueues (Linux: `sk_data_ready`): a fence and a
    /// load when nobody waits.
    @inline(__always)
    func dataReady() { readers.wakeUp() }

    // MARK: The reader

    /// Moves up to `max` queued skbs into `batch`, oldest first per worker, taking from the
    /// workers' rings in turn. Returns how many. Any thread (one at a time is enforced).
    package func dequeue(into batch: inout PacketBatch, max: Int = PacketBatch.maximumCount) -> Int {
        let want = Swift.min(max, batch.capacity - batch.count)
        guard want > 0 else { return 0 }
        var taken = 0
        reader.withLock { reader in
            let count = rings.count
            var empty = 0
            while taken < want && empty < count {
                let ring = rings[reader.next]
                reader.next = reader.next + 1 == count ? 0 : reader.next + 1
                let got = unsafe (batch.slots + batch.count).withMemoryRebound(to: UnsafeMutableRawPointer.self,
                                                                       capacity: want - taken) {
                    unsafe ring.dequeueBurst(into: $0, max: want - taken)
                }
                if got == 0 { empty += 1; continue }
                empty = 0
                var bytes = 0
                for i in batch.count..<(batch.count + got) { bytes &+= batch[i].trueSize }
                queuedBytes.subtract(bytes, ordering: .relaxed)
                batch.count += got
                taken += got
            }
        }
        return taken
    }

    /// Frees skbs the reader is done with (into the reader's cache).
    public func release(_ batch: inout PacketBatch) {
        reader.withLock { $0.cache.free(&batch) }
    }

    /// Whether anything is queued (approximate while workers run).
    public var isEmpty: Bool { rings.allSatisfy(\.isEmpty) }

    /// Returns when something may be queued or the queue is closed (at once if so already);
    /// another reader may have taken it since.
    public func wait() async {
        await readers.wait { !isEmpty || closed.load(ordering: .relaxed) }
    }

    public var isClosed: Bool { closed.load(ordering: .relaxed) }

    /// Refuses further datagrams and wakes every reader; what is queued can still be read.
    public func close() {
        closed.store(true, ordering: .relaxed)
        readers.wakeUp()
    }

    /// Frees everything queued and returns the reader's cache to the pool (after `close`, once
    /// no worker can enqueue any more). Returns how many skbs were freed.
    @discardableResult
    package func purge() -> Int {
        var freed = 0
        withPacketBatch { batch in
            while dequeue(into: &batch) > 0 {
                freed += batch.count
                release(&batch)
            }
        }
        reader.withLock { $0.cache.drainAll() }
        return freed
    }
}

extension SKB {
    /// What the skb holds in memory, its buffer and its head, as socket buffers count it (Linux:
    /// `skb->truesize`).
    @inline(__always)
    var trueSize: Int { unsafe Int(head.pointee.bufferSize) &+ MemoryLayout<SKBHead>.stride }
}
