import CDatapath
import Foundation
import Testing
@testable import DatapathCore
import DatapathWire

@Suite struct MemoryDeviceTests {
    @Test func pairCarriesFramesWithoutCopyAndCountsThem() throws {
        let (pool, worker) = try makeWorker()
        let (a, b) = MemoryDevice.pair("a", MACAddress(2, 0, 0, 0, 0, 1), "b", MACAddress(2, 0, 0, 0, 0, 2))
        let core = NetCore()
        core.register(a)
        core.register(b)
        var batch = PacketBatch()
        let sent = worker.cache.skb(frameBytes(payload: [7, 7, 7]))
        let address = sent.data
        batch.append(sent)
        a.transmit(queue: 0, &batch, worker: worker)
        #expect(batch.count == 0)
        #expect(b.receive(queue: 0, into: &batch, max: 32, worker: worker) == 1)
        #expect(batch[0].data == address)
        #expect(batch[0].inputIfindex == b.ifindex)
        #expect(a.stats[.txPackets] == 1 && b.stats[.rxPackets] == 1)
        #expect(b.stats[.rxBytes] == UInt64(frameBytes(payload: [7, 7, 7]).count))
        worker.cache.free(&batch)
        #expect(pool.inUseCount == 0)
    }

    @Test func fullPeerQueueDropsAndCounts() throws {
        let (pool, worker) = try makeWorker()
        let (a, b) = MemoryDevice.pair("a", MACAddress(2, 0, 0, 0, 0, 1), "b", MACAddress(2, 0, 0, 0, 0, 2), ringSize: 4)
        var batch = PacketBatch()
        for _ in 0..<10 { batch.append(worker.cache.skb(frameBytes())) }
        a.transmit(queue: 0, &batch, worker: worker)
        #expect(a.stats[.txPackets] == 4)
        #expect(a.stats[.txDropped] == 6)
        #expect(worker.drops[.transmitRingFull] == 6)
        _ = b.receive(queue: 0, into: &batch, max: 32, worker: worker)
        worker.cache.free(&batch)
        #expect(pool.inUseCount == 0)
    }
}

@Suite struct BacklogTests {
    @Test func steeringKeepsOwnFlowsAndQueuesOthersByHash() throws {
        let pool = try PacketPool(capacity: 4096)
        let workers = (0..<2).map { Worker(index: $0, pool: pool) }
        let backlog = Backlog(workers: 2)
        var batch = PacketBatch(), other = PacketBatch()
        for i in 0..<200 {
            let skb = workers[0].cache.skb(frameBytes())
            skb.hash = UInt32(truncatingIfNeeded: i &* 0x9E37_79B9)
            batch.append(skb)
        }
        let expectedLocal = (0..<200).filter { backlog.target(of: batch[$0]) == 0 }.count
        backlog.steer(&batch, from: workers[0])
        #expect(batch.count == expectedLocal)
        #expect(expectedLocal > 50 && expectedLocal < 150)
        for i in batch.indices { #expect(backlog.target(of: batch[i]) == 0) }
        #expect(backlog.drain(for: workers[1], into: &other) == 200 - expectedLocal)
        for i in other.indices { #expect(backlog.target(of: other[i]) == 1) }
        workers[0].cache.free(&batch)
        workers[1].cache.free(&other)
        #expect(pool.inUseCount == 0)
    }

    @Test func sameFlowAlwaysSteersToOneWorker() throws {
        let (pool, worker) = try makeWorker()
        let backlog = Backlog(workers: 4)
        // Same 5-tuple, no ring hash: the software flow hash decides.
        let ip: [UInt8] = [0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2, 0x30, 0x39, 0, 9, 0, 8, 0, 0]
        var targets = Set<Int>()
        for _ in 0..<20 {
            let skb = worker.cache.skb(frameBytes(payload: ip))
            targets.insert(backlog.target(of: skb))
            worker.cache.free(skb)
        }
        #expect(targets.count == 1)
        #expect(pool.inUseCount == 0)
    }

    @Test func workersForwardAcrossThreadsThroughTheBacklog() throws {
        // Two running workers on in-memory devices: everything injected on worker 0's device
        // is delivered exactly once, on the worker owning its flow.
        let pool = try PacketPool(capacity: 8192)
        let core = NetCore()
        let device = MemoryDevice(name: "mem0", macAddress: MACAddress(2, 0, 0, 0, 0, 2), queues: 1, ringSize: 4096)
        core.register(device)
        final class PerWorkerCount: PacketTypeHandler, @unchecked Sendable {
            let counts = [CounterBlock(count: 1), CounterBlock(count: 1)]
            let wrong = CounterBlock(count: 1)
            let backlog: Backlog
            init(backlog: Backlog) { self.backlog = backlog }
            func receive(_ batch: inout PacketBatch, worker: Worker) {
                counts[worker.index].add(0, UInt64(batch.count))
                worker.cache.free(&batch)
            }
        }
        let group = WorkerGroup(core: core, pool: pool, count: 2, pin: false, rps: true)
        let backlog = try #require(group.backlog)
        let handler = PerWorkerCount(backlog: backlog)
        core.addPacketType(.ipv4, handler)
        group.poll(device, queue: 0, on: 0)
        let injector = Worker(index: 9, pool: pool)
        var expected = [0, 0]
        var injected = 0
        group.start()
        for i in 0..<3000 {
            let skb = injector.cache.skb(frameBytes(payload: Array(repeating: UInt8(i & 0xFF), count: 46)))
            skb.hash = UInt32(truncatingIfNeeded: i &* 2_654_435_761)
            expected[backlog.target(of: skb)] += 1
            while !device.inject(skb) { usleep(100) }
            injected += 1
        }
        // A full backlog drops with .cpuBacklog (Linux: netdev_max_backlog), counted on the
        // steering worker; every packet is either delivered on its owner or counted there.
        let steered = group.workers[0]
        let deadline = Date().addingTimeInterval(20)
        while handler.counts[0][0] + handler.counts[1][0] + steered.drops[.cpuBacklog] < UInt64(injected) && Date() < deadline {
            usleep(1000)
        }
        group.stop()
        injector.cache.drainAll()
        #expect(handler.counts[0][0] == UInt64(expected[0]))
        #expect(handler.counts[1][0] + steered.drops[.cpuBacklog] == UInt64(expected[1]))
        #expect(pool.inUseCount == 0)
    }
}

@Suite struct LoopbackDeviceTests {
    @Test func whatItTransmitsItReceivesInOrder() throws {
        let (pool, worker) = try makeWorker()
        let lo = LoopbackDevice(ringSize: 8)
        let core = NetCore()
        core.register(lo)
        var batch = PacketBatch()
        for i in 0..<10 { batch.append(worker.cache.skb(frameBytes(payload: [UInt8(i)]))) }
        lo.transmit(queue: 0, &batch, worker: worker)
        // An 8-slot ring: two frames are counted drops, the rest come back in order.
        #expect(lo.stats[.txPackets] == 8 && lo.stats[.txDropped] == 2)
        #expect(worker.drops[.transmitRingFull] == 2)
        #expect(lo.receive(queue: 0, into: &batch, max: 32, worker: worker) == 8)
        #expect((0..<8).map { batch[$0].bytes[14] } == Array(0..<8))
        #expect(batch[0].inputIfindex == lo.ifindex)
        worker.cache.free(&batch)
        #expect(pool.inUseCount == 0)
    }
}

/// Puts `count` IPv4 frames (payload byte `i & 0xFF`) on `device`, runs `group` until its worker
/// 0 has received them all (10 s at most), stops it and gives the injector's buffers back.
func receiveThroughGroup(_ group: WorkerGroup, device: MemoryDevice, core: NetCore, pool: PacketPool, frames count: Int) {
    let injector = Worker(index: 5, pool: pool)
    for i in 0..<count { device.inject(injector.cache.skb(frameBytes(payload: [UInt8(i & 0xFF)]), ifindex: device.ifindex)) }
    group.start()
    let deadline = Date().addingTimeInterval(10)
    while group.workers[0].stages.packets(core.receiveStage) < count && Date() < deadline { usleep(1000) }
    group.stop()
    injector.cache.drainAll()
}

@Suite struct BusyPollTests {
    @Test func busyPollWorkerDeliversEverythingAndStops() throws {
        let pool = try PacketPool(capacity: 4096)
        let core = NetCore()
        let device = MemoryDevice(name: "mem0", macAddress: MACAddress(2, 0, 0, 0, 0, 2), ringSize: 4096)
        core.register(device)
        let handler = RecordingHandler()
        core.addPacketType(.ipv4, handler)
        let group = WorkerGroup(core: core, pool: pool, count: 1, pin: false, mode: .busyPoll)
        group.poll(device, queue: 0, on: 0)
        receiveThroughGroup(group, device: device, core: core, pool: pool, frames: 1000)
        #expect(!group.isRunning)
        #expect(handler.received.count == 1000)
        #expect(handler.received.prefix(3).map { $0[0] } == [0, 1, 2])
        #expect(pool.inUseCount == 0)
    }
}

@Suite struct WorkerCPUTests {
    /// Records the CPU each batch ran on.
    final class CPURecorder: PacketTypeHandler, @unchecked Sendable {
        let cpus = Lock<[Int32]>([])
        func receive(_ batch: inout PacketBatch, worker: Worker) {
            let cpu = CDatapath_current_cpu()
            cpus.withLock { $0.append(cpu) }
            worker.cache.free(&batch)
        }
    }

    @Test func cpuListsParseAsTasksetWritesThem() {
        let last = Int(CDatapath_cpu_count()) - 1
        #expect(WorkerGroup.cpuList("0") == [0])
        #expect(WorkerGroup.cpuList("0-\(last)") == Array(0...last))
        #expect(WorkerGroup.cpuList("\(last),0") == [last, 0])
        for bad in ["", ",", "1-0", "-1", "0-", "a", "0,,1", "\(last + 1)", "0-\(last + 1)", "1-2-3"] {
            #expect(WorkerGroup.cpuList(bad) == nil, "\(bad)")
        }
    }

    /// `cpus` puts the workers on the CPUs named, round-robin, and their threads run there.
    @Test func workersRunOnTheCPUsNamed() throws {
        let last = Int(CDatapath_cpu_count()) - 1
        let pool = try PacketPool(capacity: 256)
        let core = NetCore()
        let device = MemoryDevice(name: "mem0", macAddress: MACAddress(2, 0, 0, 0, 0, 2), ringSize: 256)
        core.register(device)
        let recorder = CPURecorder()
        core.addPacketType(.ipv4, recorder)
        let group = WorkerGroup(core: core, pool: pool, count: 2, mode: .busyPoll, cpus: [last])
        #expect(group.workers.map(\.cpu) == [last, last])
        group.poll(device, queue: 0, on: 0)
        receiveThroughGroup(group, device: device, core: core, pool: pool, frames: 10)
        let cpus = recorder.cpus.withLock { $0 }
        #expect(!cpus.isEmpty && cpus.allSatisfy { $0 == Int32(last) }, "\(cpus)")
        #expect(pool.inUseCount == 0)
    }
}
