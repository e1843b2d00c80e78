import DatapathCore
import Synchronization

/// What an app task hands a socket's worker to send, bounded by the send buffer (Linux: the
/// socket's `sk_wmem_alloc` bounded by `sk_sndbuf`, with `sock_alloc_send_skb` sleeping in
/// `sock_wait_for_wmem` until `sk_write_space` says there is room again).
///
/// The app side copies each message into an skb of the stack's pool (one copy; no allocation),
/// tags it with the two words its protocol needs (`SKB.control0/1`, e.g. the destination), and
/// queues it on one single-producer ring to the socket's home worker, whose `Tasklet` then
/// runs the protocol's send for each (`udp_sendmsg` on the worker: route cache, TX queue and
/// counters stay single-threaded). Each queued skb counts its true size until the worker has
/// sent it; a full buffer makes `enqueue` say so, and the caller waits on `writers`.
package final class SocketSendQueue: @unchecked Sendable {
    /// Runs on the home worker for a burst of queued skbs, which it takes: sends or frees them
    /// (the batch must end empty).
    public typealias Transmit = @Sendable (inout PacketBatch, Worker) -> Void

    let ring: SPSCRing
    let transmit: Transmit
    let queuedBytes = Atomic<Int>(0)
    let limit: Atomic<Int>
    let closed = Atomic<Bool>(false)
    /// Tasks waiting for room.
    let writers = SocketWaitQueue()
    let producer: Lock<Producer>
    /// Set once, right after init (the tasklet's action refers back to the queue).
    private(set) var tasklet: Tasklet!

    struct Producer: ~Copyable {
        let cache: PoolCache
        let largePool: PacketPool?
        var largeCache: PoolCache?
    }

    /// A queue drained by `worker`, holding up to `size` bytes of true size; messages are
    /// copied into `pool` buffers, or `largePool` ones when longer than those hold.
    public init(worker: Worker, size: Int = SocketBufferDefaults.send, pool: PacketPool, largePool: PacketPool?,
                transmit: @escaping Transmit) {
        ring = SPSCRing(capacity: SocketReceiveQueue.ringCapacity(forBytes: size))
        limit = Atomic(size)
        self.transmit = transmit
        producer = Lock(Producer(cache: pool.makeCache(capacity: 64, batch: 16), largePool: largePool))
        tasklet = Tasklet(on: worker) { [weak self] worker in self?.drain(worker) }
    }

    /// The send buffer in bytes of true size (Linux: `SO_SNDBUF`, without its doubling).
    public var size: Int {
        get { limit.load(ordering: .relaxed) }
        set {
            limit.store(max(2048, newValue), ordering: .relaxed)
            writers.wakeUp()
        }
    }

    /// Bytes of true size waiting for the worker now.
    public var queued: Int { queuedBytes.load(ordering: .relaxed) }

    /// Whether a message may be queued now (Linux: `sock_writeable`-like: below the buffer).
    public var hasRoom: Bool { queuedBytes.load(ordering: .relaxed) < limit.load(ordering: .relaxed) }

    /// Copies `bytes` into an skb tagged with `tag` and queues it for the worker. False when the
    /// buffer (or the ring) is full: wait with `waitForRoom` and try again. Throws
    /// `noBufferSpace` when no packet buffer is free, `notBound` once closed. Any thread.
    package func enqueue(_ bytes: UnsafeRawBufferPointer, tag: (UInt64, UInt64)) throws(SocketError) -> Bool {
        guard !closed.load(ordering: .relaxed) else { throw .closed }
        guard hasRoom else { return false }
        let result = producer.withLock { producer -> Result<Int, SocketError>? in
            var skb = producer.cache.allocate()
            if let small = skb, small.tailroom < bytes.count {
                producer.cache.free(small)
                skb = nil
                if let pool = producer.largePool {
                    if producer.largeCache == nil { producer.largeCache = pool.makeCache(capacity: 4, batch: 2) }
                    skb = producer.largeCache!.allocate()
                }
            }
            guard let skb, let out = unsafe skb.put(bytes.count) else {
                if let skb { producer.cache.free(skb) }
                return .failure(.noBufferSpace)
            }
            if let base = bytes.baseAddress { unsafe out.copyMemory(from: base, byteCount: bytes.count) }
            skb.control0 = tag.0
            skb.control1 = tag.1
            guard unsafe ring.enqueue(UnsafeMutableRawPointer(skb.head)) else {
                producer.cache.free(skb)
                return nil
            }
            return .success(skb.trueSize)
        }
        switch result {
        case nil: return false
        case .failure(let error): throw error
        case .success(let size):
            queuedBytes.add(size, ordering: .relaxed)
            tasklet.schedule()
            return true
        }
    }

    /// Returns when there may be room, or the queue was closed.
    package func waitForRoom() async {
        await writers.wait { hasRoom || closed.load(ordering: .relaxed) }
    }

    /// The tasklet's work on the home worker: sends what is queued, a burst per round, and comes
    /// back next round when more is left (so one busy socket does not hold the worker).
    func drain(_ worker: Worker) {
        guard !closed.load(ordering: .relaxed) else { return }
        let burst = 64
        withPacketBatch(capacity: burst) { batch in
            let count = unsafe batch.slots.withMemoryRebound(to: UnsafeMutableRawPointer.self, capacity: burst) {
                unsafe ring.dequeueBurst(into: $0, max: burst)
            }
            guard count > 0 else { return }
            batch.count = count
            var bytes = 0
            for i in 0..<count { bytes &+= batch[i].trueSize }
            transmit(&batch, worker)
            queuedBytes.subtract(bytes, ordering: .relaxed)
            writers.wakeUp()
        }
        if !ring.isEmpty { tasklet.schedule() }
    }

    /// Stops the worker's sends and wakes every writer. Pair with `purge` after a grace period.
    public func close() {
        closed.store(true, ordering: .relaxed)
        writers.wakeUp()
    }

    /// Frees what was never sent and returns the app side's caches to their pools; after
    /// `close` and a grace period (no drain runs any more). Returns how many were freed.
    @discardableResult
    package func purge() -> Int {
        producer.withLock { producer in
            var freed = 0
            unsafe withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer.self, capacity: 64) { slots in
                while true {
                    let count = unsafe ring.dequeueBurst(into: slots.baseAddress!, max: 64)
                    if count == 0 { break }
                    for i in 0..<count { unsafe producer.cache.free(SKB(slots[i].assumingMemoryBound(to: SKBHead.self))) }
                    freed += count
                }
            }
            queuedBytes.store(0, ordering: .relaxed)
            producer.cache.drainAll()
            producer.largeCache?.drainAll()
            return freed
        }
    }
}
