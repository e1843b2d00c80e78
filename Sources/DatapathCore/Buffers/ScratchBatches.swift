/// The batches a stage splits a batch into, one set per worker, owned by that stage (Linux
/// needs none: it threads skbs onto lists). Allocated once, so no stage allocates per batch;
/// each worker touches only its own. Freed with their owner.
public final class ScratchBatches: @unchecked Sendable {
    @usableFromInline let storage: UnsafeMutablePointer<PacketBatch>
    /// Workers with a set of their own.
    public let workers: Int
    /// Batches per worker.
    public let perWorker: Int

    /// `perWorker` batches of `capacity` slots for each of `workers` workers.
    public init(workers: Int, perWorker: Int = 1, capacity: Int = PacketBatch.maximumCount) {
        precondition(workers >= 1 && perWorker >= 1, "scratch batches need a worker and a batch")
        self.workers = workers
        self.perWorker = perWorker
        storage = .allocate(capacity: workers * perWorker)
        for i in 0..<(workers * perWorker) { (storage + i).initialize(to: PacketBatch(capacity: capacity)) }
    }

    deinit {
        storage.deinitialize(count: workers * perWorker)
        storage.deallocate()
    }

    /// `worker`'s batch number `index` (the worker's index checked, as `WorkerLocal` does).
    @inlinable @inline(__always)
    public func batch(_ worker: Worker, _ index: Int = 0) -> UnsafeMutablePointer<PacketBatch> {
        precondition(UInt(bitPattern: worker.index) < UInt(bitPattern: workers)
                     && UInt(bitPattern: index) < UInt(bitPattern: perWorker),
                     "scratch batch beyond the workers or batches it was made for")
        return storage + (worker.index &* perWorker &+ index)
    }
}
