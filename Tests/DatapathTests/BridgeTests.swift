import Testing
import Datapath
import DatapathCore
import DatapathWire

/// A bridge `br0` with ports p0…p(n-1), each wired to a host hN the test plays.
final class BridgeLab {
    let pool: PacketPool
    let clock = VirtualClock(start: 1_000_000_000_000)
    let worker: Worker
    let core = NetCore()
    let bridge: BridgeDevice
    var hosts: [MemoryDevice] = []
    var ports: [MemoryDevice] = []
    let upper = UpperRecorder()
    var batch = PacketBatch()

    init(ports count: Int = 3, fdb: BridgeFDB = BridgeFDB(seed: 1)) throws {
        pool = try PacketPool(capacity: 4096)
        worker = Worker(pool: pool, clock: clock)
        bridge = BridgeDevice(name: "br0", core: core, workers: 1, fdb: fdb)
        core.register(bridge)
        for i in 0..<count {
            let (host, port) = MemoryDevice.pair("h\(i)", mac(UInt8(0x10 + i)), "p\(i)", mac(UInt8(0x20 + i), 1))
            core.register(host)
            core.register(port)
            bridge.addPort(port, now: clock.now())
            hosts.append(host)
            ports.append(port)
        }
        core.addPacketType(.ipv4, upper)
    }


    /// Host `i` puts `frame` on its wire; the bridge port receives and handles it.
    func send(from i: Int, _ frame: [UInt8]) {
        let skb = worker.cache.allocate()!
        skb.reserve(64)
        skb.put(frame.count)!.copyMemory(from: frame, byteCount: frame.count)
        ports[i].inject(skb)
        _ = ports[i].receive(queue: 0, into: &batch, max: 256, worker: worker)
        core.netifReceiveSkb(&batch, worker: worker)
    }

    /// Markers of the frames host `i` received since the last call.
    func received(_ i: Int) -> [UInt8] {
        _ = hosts[i].receive(queue: 0, into: &batch, max: 256, worker: worker)
        let markers = batch.indices.map { batch[$0].bytes[14] }
        worker.cache.free(&batch)
        return markers
    }

    func receivedByAll() -> [[UInt8]] { hosts.indices.map(received) }

    func frame(from i: Int, to destination: MACAddress, marker: UInt8) -> [UInt8] {
        ethernetFrame(destination: destination, source: hosts[i].macAddress, marker: marker)
    }
}

/// The bridge device's upper layer: records what went up the stack.
final class UpperRecorder: PacketTypeHandler, @unchecked Sendable {
    var markers: [UInt8] = []
    var devices: [Int] = []
    var packetTypes: [PacketType] = []
    func receive(_ batch: inout PacketBatch, worker: Worker) {
        for i in batch.indices {
            markers.append(batch[i].data.load(as: UInt8.self))
            devices.append(batch[i].inputIfindex)
            packetTypes.append(batch[i].packetType)
        }
        worker.cache.free(&batch)
    }
}

@Suite struct BridgeForwardingTests {
    @Test func unknownUnicastFloodsThenLearnedAddressesForwardToOnePort() throws {
        let lab = try BridgeLab()
        let (a, b) = (lab.hosts[0].macAddress, lab.hosts[1].macAddress)
        lab.send(from: 0, lab.frame(from: 0, to: b, marker: 1))
        #expect(lab.receivedByAll() == [[], [1], [1]])
        lab.send(from: 1, lab.frame(from: 1, to: a, marker: 2))
        #expect(lab.receivedByAll() == [[2], [], []])
        lab.send(from: 0, lab.frame(from: 0, to: b, marker: 3))
        #expect(lab.receivedByAll() == [[], [3], []])
        #expect(lab.bridge.fdb.port(of: a) == 0)
        #expect(lab.bridge.fdb.port(of: b) == 1)
        #expect(lab.bridge[.forwarded] == 2)
        #expect(lab.bridge[.flooded] == 2)
        #expect(lab.upper.markers.isEmpty)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func broadcastFloodsToEveryOtherPortAndGoesUpTheBridge() throws {
        let lab = try BridgeLab()
        lab.send(from: 2, lab.frame(from: 2, to: .broadcast, marker: 9))
        #expect(lab.receivedByAll() == [[9], [9], []])
        #expect(lab.upper.markers == [9])
        #expect(lab.upper.devices == [lab.bridge.ifindex])
        #expect(lab.upper.packetTypes == [.broadcast])
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func framesForTheBridgeAddressGoUpAndAreNotForwarded() throws {
        let lab = try BridgeLab()
        lab.send(from: 1, lab.frame(from: 1, to: lab.bridge.macAddress, marker: 4))
        #expect(lab.receivedByAll() == [[], [], []])
        #expect(lab.upper.markers == [4])
        #expect(lab.upper.packetTypes == [.host])
        #expect(lab.bridge[.local] == 1)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func noHairpinAndStationMoves() throws {
        let lab = try BridgeLab()
        let b = lab.hosts[1].macAddress
        lab.send(from: 1, lab.frame(from: 1, to: .broadcast, marker: 0))
        _ = lab.receivedByAll()
        // b is on port 1: a frame to b arriving on port 1 is not sent back.
        lab.send(from: 1, ethernetFrame(destination: b, source: mac(0x77), marker: 5))
        #expect(lab.receivedByAll() == [[], [], []])
        #expect(lab.worker.drops[.bridgeSamePort] == 1)
        // b moves behind port 2.
        lab.send(from: 2, ethernetFrame(destination: .broadcast, source: b, marker: 6))
        _ = lab.receivedByAll()
        #expect(lab.bridge.fdb.port(of: b) == 2)
        lab.send(from: 0, lab.frame(from: 0, to: b, marker: 7))
        #expect(lab.receivedByAll() == [[], [], [7]])
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func invalidSourcesAndLinkLocalGroupsAreDroppedButTheSTPGroupFloods() throws {
        let lab = try BridgeLab()
        lab.send(from: 0, ethernetFrame(destination: lab.hosts[1].macAddress, source: MACAddress(1, 0, 0x5E, 0, 0, 1), marker: 1))
        lab.send(from: 0, ethernetFrame(destination: lab.hosts[1].macAddress, source: .zero, marker: 2))
        #expect(lab.worker.drops[.macInvalidSource] == 2)
        lab.send(from: 0, lab.frame(from: 0, to: MACAddress(0x01, 0x80, 0xC2, 0, 0, 0x0E), marker: 3))
        #expect(lab.worker.drops[.unhandledProtocol] == 1)
        lab.send(from: 0, lab.frame(from: 0, to: MACAddress(0x01, 0x80, 0xC2, 0, 0, 0), marker: 4))
        #expect(lab.receivedByAll() == [[], [4], [4]])
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func learnedEntriesAgeOutAfterTheAgeingTimeButStaticOnesStay() throws {
        let lab = try BridgeLab()
        let fdb = lab.bridge.fdb
        #expect(fdb.ageingTime == .seconds(300))
        let staticMAC = mac(0x99)
        fdb.addStatic(staticMAC, port: 2, now: lab.clock.now())
        lab.send(from: 0, lab.frame(from: 0, to: .broadcast, marker: 0))
        _ = lab.receivedByAll()
        lab.clock.advance(by: .seconds(299))
        #expect(fdb.age(now: lab.clock.now()) == 0)
        #expect(fdb.port(of: lab.hosts[0].macAddress) == 0)
        lab.clock.advance(by: .seconds(2))
        #expect(fdb.age(now: lab.clock.now()) == 1)
        #expect(fdb.port(of: lab.hosts[0].macAddress) == nil)
        #expect(fdb.port(of: staticMAC) == 2)
        // Static entries forward without learning and do not move.
        lab.send(from: 0, ethernetFrame(destination: .broadcast, source: staticMAC, marker: 1))
        _ = lab.receivedByAll()
        #expect(fdb.port(of: staticMAC) == 2)
        lab.send(from: 1, lab.frame(from: 1, to: staticMAC, marker: 2))
        #expect(lab.receivedByAll() == [[], [], [2]])
        // And an aged-out address floods again.
        lab.send(from: 1, lab.frame(from: 1, to: lab.hosts[0].macAddress, marker: 3))
        #expect(lab.receivedByAll() == [[3], [], [3]])
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func aPortThatIsDownNeitherReceivesNorForwardsAndCarrierLossFlushesIt() throws {
        let lab = try BridgeLab()
        lab.send(from: 2, lab.frame(from: 2, to: .broadcast, marker: 0))
        _ = lab.receivedByAll()
        #expect(lab.bridge.fdb.port(of: lab.hosts[2].macAddress) == 2)
        lab.core.setAdminUp(false, ifindex: lab.ports[1].ifindex)
        lab.send(from: 0, lab.frame(from: 0, to: .broadcast, marker: 1))
        #expect(lab.receivedByAll() == [[], [], [1]])
        lab.send(from: 1, lab.frame(from: 1, to: .broadcast, marker: 2))
        #expect(lab.receivedByAll() == [[], [], []])
        #expect(lab.worker.drops[.deviceDown] == 1)
        lab.core.setAdminUp(true, ifindex: lab.ports[1].ifindex)

        lab.bridge.ports[2].hasCarrier = false
        #expect(lab.bridge.fdb.port(of: lab.hosts[2].macAddress) == nil)
        lab.send(from: 0, lab.frame(from: 0, to: lab.hosts[2].macAddress, marker: 3))
        #expect(lab.receivedByAll() == [[], [3], []])
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func theBridgeDeviceSendsKnownUnicastToOnePortAndFloodsTheRest() throws {
        let lab = try BridgeLab()
        lab.send(from: 1, lab.frame(from: 1, to: .broadcast, marker: 0))
        _ = lab.receivedByAll()
        lab.upper.markers.removeAll()
        var out = PacketBatch()
        for (destination, marker) in [(lab.hosts[1].macAddress, UInt8(1)), (MACAddress.broadcast, 2), (mac(0x42), 3)] {
            let bytes = ethernetFrame(destination: destination, source: lab.bridge.macAddress, marker: marker)
            let skb = lab.worker.cache.allocate()!
            skb.reserve(64)
            skb.put(bytes.count)!.copyMemory(from: bytes, byteCount: bytes.count)
            out.append(skb)
        }
        lab.core.devQueueXmit(&out, device: lab.bridge, worker: lab.worker)
        #expect(lab.receivedByAll() == [[2, 3], [1, 2, 3], [2, 3]])
        #expect(lab.bridge.stats[.txPackets] == 3)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func aFloodOfSourceAddressesIsBoundedByTheTable() throws {
        let lab = try BridgeLab(ports: 2, fdb: BridgeFDB(capacity: 64, seed: 3))
        for i in 0..<200 {
            lab.send(from: 0, ethernetFrame(destination: .broadcast, source: MACAddress(2, 1, 0, 0, UInt8(i >> 8), UInt8(i & 0xFF)), marker: 0))
            _ = lab.receivedByAll()
        }
        #expect(lab.bridge.fdb.count <= 32)
        #expect(lab.bridge.fdb.refused > 0)
        lab.clock.advance(by: .seconds(301))
        lab.bridge.fdb.age(now: lab.clock.now())
        #expect(lab.bridge.fdb.count == 3)   // the local entries: br0, p0, p1
        #expect(lab.pool.inUseCount == 0)
    }
}
