import Testing
@testable import DatapathCore

@Suite struct PacketPoolTests {
    @Test func allocateAndFreeReturnToBaseline() throws {
        let (pool, worker) = try makeWorker(capacity: 256)
        #expect(pool.inUseCount == 0)
        var skbs: [SKB] = []
        for _ in 0..<200 { skbs.append(try #require(worker.cache.allocate())) }
        #expect(pool.inUseCount == 200)
        for skb in skbs { worker.cache.free(skb) }
        #expect(pool.inUseCount == 0)
        #expect(pool.freeCount == 256)
    }

    @Test func exhaustedPoolReturnsNilAndRecovers() throws {
        let (pool, worker) = try makeWorker(capacity: 128)
        var skbs: [SKB] = []
        while let skb = worker.cache.allocate() { skbs.append(skb) }
        #expect(skbs.count == 128)
        #expect(worker.cache.allocate() == nil)
        worker.cache.free(skbs.removeLast())
        #expect(worker.cache.allocate() != nil)
        #expect(pool.inUseCount == 128)
    }

    @Test func bulkAllocationIsAllOrNothing() throws {
        let (pool, worker) = try makeWorker(capacity: 128)
        let slots = UnsafeMutablePointer<SKB>.allocate(capacity: 256)
        defer { slots.deallocate() }
        #expect(!worker.cache.allocateBulk(slots, count: 129))
        #expect(pool.inUseCount == 0)
        #expect(worker.cache.allocateBulk(slots, count: 100))
        #expect(pool.inUseCount == 100)
        #expect(!worker.cache.allocateBulk(slots + 100, count: 29))
        #expect(pool.inUseCount == 100)
        for i in 0..<100 { worker.cache.free(slots[i]) }
        #expect(pool.inUseCount == 0)
    }

    @Test func freshSkbHasHeadroomAndNoData() throws {
        let (pool, worker) = try makeWorker()
        let skb = try #require(worker.cache.allocate())
        #expect(skb.length == 0)
        #expect(skb.headroom == pool.headroom)
        #expect(skb.tailroom == pool.bufferSize - pool.headroom)
        worker.cache.free(skb)
    }

    @Test func putPushPullTrimKeepBounds() throws {
        let (pool, worker) = try makeWorker()
        let skb = try #require(worker.cache.allocate())
        let tail = try #require(skb.put(100))
        tail.storeBytes(of: 0x42, as: UInt8.self)
        #expect(skb.length == 100)
        #expect(skb.put(skb.tailroom + 1) == nil)
        #expect(skb.length == 100)
        let front = try #require(skb.push(14))
        #expect(front == skb.data)
        #expect(skb.length == 114)
        #expect(skb.push(pool.headroom) == nil)
        #expect(skb.pull(14) != nil)
        #expect(skb.data.load(as: UInt8.self) == 0x42)
        #expect(skb.pull(101) == nil)
        skb.trim(to: 60)
        #expect(skb.length == 60)
        skb.trim(to: 80)
        #expect(skb.length == 60)
        worker.cache.free(skb)
        #expect(pool.inUseCount == 0)
    }

    @Test func cloneSharesDataUntilTheLastReferenceGoes() throws {
        let (pool, worker) = try makeWorker()
        let original = worker.cache.skb([1, 2, 3, 4])
        let clone = try #require(worker.cache.clone(original))
        #expect(clone.data == original.data)
        #expect(original.isShared && clone.isShared)
        #expect(pool.inUseCount == 2)
        worker.cache.free(original)
        // The clone still reads the data: the original's element is held for it.
        #expect(clone.bytes == [1, 2, 3, 4])
        #expect(pool.inUseCount == 2)
        let second = try #require(worker.cache.clone(clone))
        worker.cache.free(clone)
        #expect(pool.inUseCount == 2)
        worker.cache.free(second)
        #expect(pool.inUseCount == 0)
    }

    @Test func copyIsPrivateAndKeepsOffsets() throws {
        let (pool, worker) = try makeWorker()
        let original = worker.cache.skb([9, 8, 7, 6, 5])
        _ = original.pull(2)
        original.resetNetworkHeader()
        let copy = try #require(worker.cache.copy(original))
        #expect(copy.data != original.data)
        #expect(copy.bytes == [7, 6, 5])
        #expect(copy.headroom == original.headroom)
        #expect(copy.networkHeader == copy.data)
        copy.data.storeBytes(of: 0, as: UInt8.self)
        #expect(original.bytes == [7, 6, 5])
        #expect(!copy.isShared)
        worker.cache.free(original)
        worker.cache.free(copy)
        #expect(pool.inUseCount == 0)
    }

    @Test func batchFreeEmptiesBatchAndPool() throws {
        let (pool, worker) = try makeWorker()
        var batch = PacketBatch()
        for i in 0..<200 { batch.append(worker.cache.skb([UInt8(i & 0xFF)])) }
        if let clone = worker.cache.clone(batch[0]) { batch.append(clone) }
        #expect(pool.inUseCount == 201)
        worker.cache.free(&batch)
        #expect(batch.count == 0)
        #expect(pool.inUseCount == 0)
    }

    @Test func cachesOfTwoWorkersFreeIntoEachOther() throws {
        let pool = try PacketPool(capacity: 2048)
        let a = Worker(index: 0, pool: pool), b = Worker(index: 1, pool: pool)
        var skbs: [SKB] = []
        for _ in 0..<1500 { skbs.append(try #require(a.cache.allocate())) }
        for skb in skbs { b.cache.free(skb) }  // freed on another CPU, as after RPS
        #expect(pool.inUseCount == 0)
        #expect(b.cache.count <= b.cache.capacity)
    }

    @Test func foreignPoolSkbGoesHomeOnFree() throws {
        let (poolA, workerA) = try makeWorker(capacity: 128)
        let (poolB, workerB) = try makeWorker(capacity: 128)
        let skb = try #require(workerA.cache.allocate())
        workerB.cache.free(skb)
        #expect(poolA.inUseCount == 0)
        #expect(poolB.inUseCount == 0)
    }

    @Test func invalidPoolSizesAreErrors() {
        #expect(throws: PoolError.invalidSize(capacity: 0, bufferSize: 2048)) {
            _ = try PacketPool(capacity: 0, bufferSize: 2048)
        }
        #expect(throws: PoolError.self) { _ = try PacketPool(capacity: 8, bufferSize: 64, headroom: 128) }
    }
}

@Suite struct NUMAPoolTests {
    @Test func oneNodeLocalPoolPerNodeAndWorkersUseTheirCPUsNode() throws {
        let pools = try PacketPool.perNode(capacity: 256)
        #expect(!pools.isEmpty)
        #expect(pools.map(\.node) == Array(0..<pools.count))
        let group = WorkerGroup(core: NetCore(), pools: pools, count: 4)
        for worker in group.workers {
            let cpu = try #require(worker.cpu)
            #expect(worker.pool.node == PacketPool.node(ofCPU: cpu))
        }
    }
}
