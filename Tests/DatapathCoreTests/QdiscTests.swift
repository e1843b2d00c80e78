import Testing
@testable import DatapathCore
import DatapathWire

/// dev_queue_xmit's pfifo qdisc: what the device has no room for waits, in order, and goes out
/// before anything newer; past the limit it is dropped and counted.
@Suite struct QdiscTests {
    /// A core with eth0 (its peer's ring holds 64 frames) and a worker.
    func rig(limit: Int = 1000) throws -> (NetCore, MemoryDevice, MemoryDevice, Worker, PacketPool) {
        let pool = try PacketPool(capacity: 2048)
        let worker = Worker(pool: pool)
        let core = NetCore()
        core.transmitQueueLength = limit
        let (eth0, wire0) = MemoryDevice.pair("eth0", MACAddress(2, 0, 0, 0, 0, 1), "wire0", MACAddress(2, 0, 0, 0, 0, 2),
                                              ringSize: 64)
        core.register(eth0)
        core.register(wire0)
        return (core, eth0, wire0, worker, pool)
    }

    func send(_ count: Int, from first: Int, _ core: NetCore, _ device: MemoryDevice, _ worker: Worker) {
        var batch = PacketBatch()
        for n in first..<(first + count) {
            let skb = worker.cache.allocate()!
            let data = skb.put(60)!
            data.initializeMemory(as: UInt8.self, repeating: 0, count: 60)
            data.storeBytes(of: UInt32(n).bigEndian, toByteOffset: 14, as: UInt32.self)
            batch.append(skb)
            if batch.isFull {
                core.devQueueXmit(&batch, device: device, worker: worker)
            }
        }
        core.devQueueXmit(&batch, device: device, worker: worker)
    }

    /// Sequence numbers of the frames waiting on `wire`'s ring, freed.
    func received(_ wire: MemoryDevice, _ worker: Worker) -> [Int] {
        var batch = PacketBatch()
        var numbers: [Int] = []
        while wire.receive(queue: 0, into: &batch, max: 256, worker: worker) > 0 {
            numbers += batch.indices.map { Int(UInt32(bigEndian: batch[$0].data.loadUnaligned(fromByteOffset: 14, as: UInt32.self))) }
            worker.cache.free(&batch)
        }
        return numbers
    }

    @Test func whatDoesNotFitWaitsAndLeavesInOrder() throws {
        let (core, eth0, wire0, worker, pool) = try rig()
        send(200, from: 0, core, eth0, worker)
        let qdisc = try #require(core.qdisc(ifindex: eth0.ifindex))
        #expect(qdisc.backlog == 136)
        #expect(core.hasQdiscBacklog(worker: worker))
        var all = received(wire0, worker)
        // Newer packets queue behind the waiting ones.
        send(10, from: 200, core, eth0, worker)
        #expect(qdisc.backlog == 146 - 64)
        while core.hasQdiscBacklog(worker: worker) {
            all += received(wire0, worker)
            core.runQdiscs(worker: worker)
        }
        all += received(wire0, worker)
        #expect(all == Array(0..<210))
        #expect(qdisc.dropped == 0 && eth0.stats[.txDropped] == 0 && eth0.stats[.txPackets] == 210)
        worker.cache.drainAll()
        #expect(pool.inUseCount == 0)
    }

    @Test func pastTheLimitPacketsAreDroppedAndCounted() throws {
        let (core, eth0, wire0, worker, pool) = try rig(limit: 100)
        send(300, from: 0, core, eth0, worker)
        let qdisc = try #require(core.qdisc(ifindex: eth0.ifindex))
        #expect(qdisc.backlog == 100 && qdisc.dropped == 136)
        #expect(worker.drops[.qdiscDrop] == 136 && eth0.stats[.txDropped] == 136)
        var all = received(wire0, worker)
        while core.hasQdiscBacklog(worker: worker) {
            core.runQdiscs(worker: worker)
            all += received(wire0, worker)
        }
        #expect(all == Array(0..<164))
        worker.cache.drainAll()
        #expect(pool.inUseCount == 0)
    }
}
