/// The per-CPU backlogs and RPS steering between workers (Linux: `netif_rx` →
/// `get_rps_cpu` → `enqueue_to_backlog`, drained by `process_backlog`). One lock-free SPSC
/// ring per (from, to) pair, so no two workers ever write the same ring.
public final class Backlog: @unchecked Sendable {
    public let workerCount: Int
    let rings: [SPSCRing]
    public let hasher: FlowHasher
    public let stage = StageID.named("netif-rx")

    public init(workers: Int, ringSize: Int = 1024, hasher: FlowHasher = FlowHasher()) {
        workerCount = workers
        rings = (0..<(workers * workers)).map { _ in SPSCRing(capacity: ringSize) }
        self.hasher = hasher
    }

    /// The worker that owns `skb`'s flow (Linux: `get_rps_cpu`). Uses the ring's hash when the
    /// kernel gave one, else hashes the frame (and stores it in `skb.hash`).
    @inlinable
    public func target(of skb: SKB) -> Int {
        var hash = skb.hash
        if hash == 0 {
            hash = hasher.hash(frame: skb.data, length: skb.length)
            skb.hash = hash
        }
        return Int((UInt64(hash) &* UInt64(workerCount)) >> 32)
    }

    /// Keeps in `batch` the skbs that belong to `worker` and queues the rest to their owners'
    /// backlogs (Linux: `netif_rx` with RPS). Drops: `.cpuBacklog` when a backlog is full.
    public func steer(_ batch: inout PacketBatch, from worker: Worker) {
        guard workerCount > 1 else { return }
        let start = cycleCount()
        let packets = batch.count
        var kept = 0
        for i in batch.indices {
            let skb = batch[i]
            let target = target(of: skb)
            if target == worker.index {
                batch[kept] = skb
                kept &+= 1
            } else if !rings[worker.index &* workerCount &+ target].enqueue(UnsafeMutableRawPointer(skb.head)) {
                worker.drop(skb, .cpuBacklog)
            }
        }
        batch.count = kept
        worker.stages.record(stage, packets: packets, cycles: cycleCount() &- start)
    }

    /// Moves what other workers queued for `worker` into `batch` (Linux: `process_backlog`).
    public func drain(for worker: Worker, into batch: inout PacketBatch) -> Int {
        guard workerCount > 1 else { return 0 }
        var total = 0
        for from in 0..<workerCount where from != worker.index {
            let room = batch.capacity - batch.count
            if room == 0 { break }
            let got = (batch.slots + batch.count).withMemoryRebound(to: UnsafeMutableRawPointer.self, capacity: room) {
                rings[from &* workerCount &+ worker.index].dequeueBurst(into: $0, max: room)
            }
            batch.count += got
            total += got
        }
        return total
    }

    /// Frees what the backlogs still hold, once the workers have stopped. Returns how many.
    public func release(worker: Worker) -> Int {
        var freed = 0
        var slots = [UnsafeMutableRawPointer?](repeating: nil, count: 64)
        for ring in rings {
            while true {
                let got = slots.withUnsafeMutableBufferPointer { buffer in
                    buffer.baseAddress!.withMemoryRebound(to: UnsafeMutableRawPointer.self, capacity: 64) {
                        ring.dequeueBurst(into: $0, max: 64)
                    }
                }
                if got == 0 { break }
                for slot in slots[0..<got] {
                    worker.cache.free(SKB(slot!.assumingMemoryBound(to: SKBHead.self)))
                }
                freed &+= got
            }
        }
        return freed
    }
}
