import Foundation
import Testing
@testable import Datapath
import DatapathCore

/// The receive queue's hand-off between a worker thread and an awaiting reader: no wake-up is
/// lost. A producer thread queues skbs in bursts with pauses (so the reader keeps going to
/// sleep); a reader awaits and counts them. A lost wake-up leaves the reader asleep with skbs
/// queued after the last burst; the watchdog then closes the queue, which wakes it, and the
/// count comes up short.
@Suite struct SocketQueueTests {
    @Test func aWaitingReaderSeesEveryBurstAWorkerQueues() async throws {
        let pool = try PacketPool(capacity: 4096)
        let worker = Worker(pool: pool)
        let queue = SocketReceiveQueue(workers: 1, size: 1 << 24, pool: pool)
        let total = 2000
        let producer = Thread {
            var sent = 0
            var burst = 1
            while sent < total {
                for _ in 0..<min(burst, total - sent) {
                    let skb = worker.cache.allocate()!
                    _ = skb.put(8)
                    #expect(queue.enqueue(skb, worker: worker))
                    sent += 1
                }
                queue.dataReady()
                burst = burst % 7 + 1
                if sent % 3 == 0 { usleep(UInt32(sent % 5) * 20) }
            }
        }
        producer.start()
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(20))
            queue.close()
        }
        var received = 0
        while received < total && !queue.isClosed {
            let got = withPacketBatch { batch in
                let n = queue.dequeue(into: &batch)
                queue.release(&batch)
                return n
            }
            received += got
            if got == 0 { await queue.wait() }
        }
        watchdog.cancel()
        #expect(received == total)
        queue.close()
        while producer.isExecuting { usleep(1000) }
        queue.purge()
        worker.cache.drainAll()
        #expect(pool.inUseCount == 0)
    }
}
