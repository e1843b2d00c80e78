@testable import DatapathCore
import Testing

@Suite struct SKBQueueTests {
    /// The first byte of each skb on the queue, oldest first.
    func tags(_ queue: SKBQueue) -> [UInt8] { queue.map { $0.data.load(as: UInt8.self) } }

    @Test func isFirstInFirstOut() throws {
        let (pool, worker) = try makeWorker(capacity: 64)
        var queue = SKBQueue()
        #expect(queue.isEmpty && queue.head == nil && queue.dequeue() == nil)
        for tag in 1...5 { queue.enqueue(worker.cache.skb([UInt8(tag)])) }
        #expect(queue.count == 5 && tags(queue) == [1, 2, 3, 4, 5])
        #expect(queue.head?.data.load(as: UInt8.self) == 1 && queue.tail?.data.load(as: UInt8.self) == 5)
        var out: [UInt8] = []
        while let skb = queue.dequeue() {
            #expect(skb.head.pointee.next == nil)
            out.append(skb.data.load(as: UInt8.self))
            worker.cache.free(skb)
        }
        #expect(out == [1, 2, 3, 4, 5] && queue.isEmpty && queue.tail == nil)
        worker.cache.drainAll()
        #expect(pool.inUseCount == 0)
    }

    @Test func insertsAtTheHeadInTheMiddleAndAtTheTail() throws {
        let (pool, worker) = try makeWorker(capacity: 64)
        var queue = SKBQueue()
        let two = worker.cache.skb([2])
        queue.insert(two, after: nil)                      // into an empty queue
        queue.insert(worker.cache.skb([4]), after: two)    // after the tail: the new tail
        queue.enqueueHead(worker.cache.skb([1]))
        queue.insert(worker.cache.skb([3]), after: two)    // in the middle
        queue.enqueue(worker.cache.skb([5]))
        #expect(tags(queue) == [1, 2, 3, 4, 5] && queue.count == 5)
        #expect(queue.tail?.data.load(as: UInt8.self) == 5)
        queue.free(worker: worker)
        #expect(queue.isEmpty)
        worker.cache.drainAll()
        #expect(pool.inUseCount == 0)
    }

    @Test func dequeuesIntoABatchUpToItsRoom() throws {
        let (pool, worker) = try makeWorker(capacity: 64)
        var queue = SKBQueue()
        for tag in 0..<10 { queue.enqueue(worker.cache.skb([UInt8(tag)])) }
        var batch = PacketBatch(capacity: 4)
        batch.append(worker.cache.skb([99]))
        #expect(queue.dequeue(into: &batch) == 3)
        #expect(batch.count == 4 && queue.count == 7 && tags(queue).first == 3)
        worker.cache.free(&batch)
        #expect(queue.dequeue(into: &batch) == 4 && queue.count == 3)
        worker.cache.free(&batch)
        queue.purge(.notSpecified, worker: worker)
        #expect(worker.drops[.notSpecified] == 3)
        worker.cache.drainAll()
        #expect(pool.inUseCount == 0)
    }

    /// A random mix of operations against an array model.
    @Test func matchesAnArrayModel() throws {
        let (pool, worker) = try makeWorker(capacity: 512)
        var rng = SplitMix64(seed: 7)
        var queue = SKBQueue()
        var model: [UInt8] = []
        var tag: UInt8 = 0
        for _ in 0..<5000 {
            tag &+= 1
            switch rng.next() % 4 {
            case 0 where model.count < 200:
                queue.enqueue(worker.cache.skb([tag]))
                model.append(tag)
            case 1 where model.count < 200:
                queue.enqueueHead(worker.cache.skb([tag]))
                model.insert(tag, at: 0)
            case 2 where !model.isEmpty && model.count < 200:
                let position = Int(rng.next() % UInt64(model.count))
                let previous = Array(queue)[position]
                queue.insert(worker.cache.skb([tag]), after: previous)
                model.insert(tag, at: position + 1)
            default:
                let skb = queue.dequeue()
                #expect(skb?.data.load(as: UInt8.self) == model.first)
                if let skb { worker.cache.free(skb) }
                if !model.isEmpty { model.removeFirst() }
            }
            #expect(queue.count == model.count)
        }
        #expect(tags(queue) == model)
        queue.free(worker: worker)
        worker.cache.drainAll()
        #expect(pool.inUseCount == 0)
    }
}
