import Testing
@testable import DatapathCore
import DatapathWire

@Suite struct NetifReceiveSkbTests {
    let deviceMAC = MACAddress(2, 0, 0, 0, 0, 2)

    func setUp() throws -> (NetCore, MemoryDevice, PacketPool, Worker) {
        let (pool, worker) = try makeWorker()
        let core = NetCore()
        let device = MemoryDevice(name: "mem0", macAddress: deviceMAC)
        core.register(device)
        return (core, device, pool, worker)
    }

    @Test func framesReachTheHandlerForTheirEtherTypeWithTheHeaderPulled() throws {
        let (core, device, pool, worker) = try setUp()
        let ipv4 = RecordingHandler(), arp = RecordingHandler()
        core.addPacketType(.ipv4, ipv4)
        core.addPacketType(.arp, arp)
        var batch = PacketBatch()
        batch.append(worker.cache.skb(frameBytes(etherType: 0x0800, payload: [1, 2, 3]), ifindex: device.ifindex))
        batch.append(worker.cache.skb(frameBytes(etherType: 0x0806, payload: [4, 5]), ifindex: device.ifindex))
        batch.append(worker.cache.skb(frameBytes(etherType: 0x0800, payload: [6]), ifindex: device.ifindex))
        core.netifReceiveSkb(&batch, worker: worker)
        #expect(ipv4.received == [[1, 2, 3], [6]])
        #expect(arp.received == [[4, 5]])
        #expect(ipv4.protocols == [0x0800, 0x0800])
        #expect(pool.inUseCount == 0)
        #expect(worker.stages.packets(core.receiveStage) == 3)
    }

    @Test func unknownEtherTypeIsACountedDrop() throws {
        let (core, device, pool, worker) = try setUp()
        let ipv4 = RecordingHandler()
        core.addPacketType(.ipv4, ipv4)
        var batch = PacketBatch()
        batch.append(worker.cache.skb(frameBytes(etherType: 0x88B5), ifindex: device.ifindex))
        batch.append(worker.cache.skb(frameBytes(etherType: 0x0800), ifindex: device.ifindex))
        core.netifReceiveSkb(&batch, worker: worker)
        #expect(worker.drops[.unhandledProtocol] == 1)
        #expect(ipv4.received.count == 1)
        #expect(pool.inUseCount == 0)
    }

    @Test func runtFramesAreDroppedAsTooSmall() throws {
        let (core, device, pool, worker) = try setUp()
        var batch = PacketBatch()
        for length in [0, 1, 13] {
            batch.append(worker.cache.skb(Array(repeating: 0xFF, count: length), ifindex: device.ifindex))
        }
        core.netifReceiveSkb(&batch, worker: worker)
        #expect(worker.drops[.packetTooSmall] == 3)
        #expect(pool.inUseCount == 0)
    }

    @Test func packetTypeFollowsTheDestinationMAC() throws {
        let (core, device, _, worker) = try setUp()
        let handler = RecordingHandler()
        core.addPacketType(.ipv4, handler)
        var batch = PacketBatch()
        for destination in [[2, 0, 0, 0, 0, 2], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], [1, 0, 0x5E, 0, 0, 1], [2, 0, 0, 0, 0, 9]] as [[UInt8]] {
            batch.append(worker.cache.skb(frameBytes(destination: destination), ifindex: device.ifindex))
        }
        core.netifReceiveSkb(&batch, worker: worker)
        #expect(handler.packetTypes == [.host, .broadcast, .multicast, .otherHost])
    }

    @Test func rxHandlerSeesFramesFirstAndCanConsumeOrPass() throws {
        let (core, device, pool, worker) = try setUp()
        let handler = RecordingHandler()
        core.addPacketType(.ipv4, handler)
        final class TakeOdd: RxHandler, @unchecked Sendable {
            var taken = 0
            func receive(_ batch: inout PacketBatch, worker: Worker) {
                var kept = 0
                for i in batch.indices {
                    if batch[i].data.load(as: UInt8.self) % 2 == 1 {
                        taken += 1
                        worker.cache.free(batch[i])
                    } else {
                        batch[kept] = batch[i]
                        kept += 1
                    }
                }
                batch.count = kept
            }
        }
        let rx = TakeOdd()
        core.setRxHandler(rx, on: device)
        var batch = PacketBatch()
        for i in 0..<10 { batch.append(worker.cache.skb(frameBytes(payload: [UInt8(i)]), ifindex: device.ifindex)) }
        core.netifReceiveSkb(&batch, worker: worker)
        #expect(rx.taken == 5)
        #expect(handler.received.map { $0[0] } == [0, 2, 4, 6, 8])
        #expect(pool.inUseCount == 0)
    }

    @Test func rxHandlerCanHandFramesToAnotherDevice() throws {
        let (core, slave, pool, worker) = try setUp()
        let master = MemoryDevice(name: "bond0", macAddress: deviceMAC)
        core.register(master)
        final class ToMaster: RxHandler, @unchecked Sendable {
            let master: Int
            init(master: Int) { self.master = master }
            func receive(_ batch: inout PacketBatch, worker: Worker) {
                for i in batch.indices { batch[i].inputIfindex = master }
            }
        }
        final class CountingTap: PacketTap, @unchecked Sendable {
            var seen: [String] = []
            func tap(_ batch: borrowing PacketBatch, device: any NetDevice, worker: Worker) {
                seen.append("\(device.name):\(batch.count)")
            }
        }
        let tap = CountingTap()
        core.addTap(tap)
        core.setRxHandler(ToMaster(master: master.ifindex), on: slave)
        let handler = RecordingHandler()
        core.addPacketType(.ipv4, handler)
        var batch = PacketBatch()
        batch.append(worker.cache.skb(frameBytes(), ifindex: slave.ifindex))
        batch.append(worker.cache.skb(frameBytes(), ifindex: slave.ifindex))
        core.netifReceiveSkb(&batch, worker: worker)
        // Taps run for the slave and again for the master, as Linux's another_round does.
        #expect(tap.seen == ["mem0:2", "bond0:2"])
        #expect(handler.received.count == 2)
        #expect(pool.inUseCount == 0)
    }

    @Test func mixedDeviceBatchIsDeliveredPerDevice() throws {
        let (core, first, pool, worker) = try setUp()
        let second = MemoryDevice(name: "mem1", macAddress: MACAddress(2, 0, 0, 0, 0, 3))
        core.register(second)
        let handler = RecordingHandler()
        core.addPacketType(.ipv4, handler)
        var batch = PacketBatch()
        batch.append(worker.cache.skb(frameBytes(destination: [2, 0, 0, 0, 0, 2]), ifindex: first.ifindex))
        batch.append(worker.cache.skb(frameBytes(destination: [2, 0, 0, 0, 0, 3]), ifindex: second.ifindex))
        batch.append(worker.cache.skb(frameBytes(destination: [2, 0, 0, 0, 0, 3]), ifindex: first.ifindex))
        core.netifReceiveSkb(&batch, worker: worker)
        // Each frame's packet type is judged against its own device's MAC.
        #expect(handler.packetTypes.sorted { $0.rawValue < $1.rawValue } == [.host, .host, .otherHost])
        #expect(handler.calls == 2)
        #expect(pool.inUseCount == 0)
    }
}
