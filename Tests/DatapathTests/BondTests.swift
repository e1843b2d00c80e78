import Testing
import Datapath
import DatapathCore
import DatapathWire

/// A bond `bond0` (198.18.5.1/24) over slaves s0…s(n-1), each wired to a link wN the test plays.
final class BondLab {
    let pool: PacketPool
    let worker: Worker
    let core = NetCore()
    let addresses = InterfaceAddresses()
    let bond: BondDevice
    var slaves: [MemoryDevice] = []
    var wires: [MemoryDevice] = []
    let upper = UpperRecorder()
    var batch = PacketBatch()

    init(_ mode: BondMode, policy: XmitHashPolicy = .layer2, slaves count: Int = 2) throws {
        pool = try PacketPool(capacity: 4096)
        worker = Worker(pool: pool, clock: VirtualClock())
        bond = BondDevice(name: "bond0", mode: mode, hashPolicy: policy, core: core, workers: 1, addresses: addresses)
        core.register(bond)
        addresses.add(InterfaceAddress(address: ip("198.18.5.1"), prefixLength: 24, ifindex: bond.ifindex))
        for i in 0..<count {
            let (slave, wire) = MemoryDevice.pair("s\(i)", mac(UInt8(0x30 + i)), "w\(i)", mac(UInt8(0x40 + i)))
            core.register(slave)
            core.register(wire)
            bond.addSlave(slave)
            slaves.append(slave)
            wires.append(wire)
        }
        core.addPacketType(.ipv4, upper)
    }


    /// The bond sends frames (data at the Ethernet header) built by `make`.
    func transmit(_ frames: [[UInt8]]) {
        var out = PacketBatch()
        for bytes in frames {
            let skb = worker.cache.allocate()!
            skb.reserve(64)
            skb.put(bytes.count)!.copyMemory(from: bytes, byteCount: bytes.count)
            out.append(skb)
        }
        core.devQueueXmit(&out, device: bond, worker: worker)
    }

    /// Frames that left through each slave since the last call.
    func sentPerSlave() -> [[[UInt8]]] {
        wires.map { wire in
            _ = wire.receive(queue: 0, into: &batch, max: 256, worker: worker)
            let frames = batch.indices.map { batch[$0].bytes }
            worker.cache.free(&batch)
            return frames
        }
    }

    /// A frame arrives on slave `i`.
    func arrive(on i: Int, _ frame: [UInt8]) {
        let skb = worker.cache.allocate()!
        skb.reserve(64)
        skb.put(frame.count)!.copyMemory(from: frame, byteCount: frame.count)
        slaves[i].inject(skb)
        _ = slaves[i].receive(queue: 0, into: &batch, max: 256, worker: worker)
        core.netifReceiveSkb(&batch, worker: worker)
    }
}

/// A UDP/IPv4 frame from 198.18.5.1:`sourcePort` to `destination`:`destinationPort`.
func udpFrame(source: MACAddress = mac(0x30), destination: MACAddress = mac(0x99), to address: String = "198.18.6.1",
              sourcePort: UInt16 = 1000, destinationPort: UInt16 = 9, marker: UInt8 = 0) -> [UInt8] {
    var bytes = ethernetFrame(destination: destination, source: source, marker: 0x45, length: 14 + 28 + 4)
    bytes[14 + 9] = 17
    let from = ip("198.18.5.1"), to = ip(address)
    for k in 0..<4 {
        bytes[14 + 12 + k] = from[k]
        bytes[14 + 16 + k] = to[k]
    }
    bytes[34] = UInt8(sourcePort >> 8); bytes[35] = UInt8(sourcePort & 0xFF)
    bytes[36] = UInt8(destinationPort >> 8); bytes[37] = UInt8(destinationPort & 0xFF)
    bytes[42] = marker
    return bytes
}

@Suite struct BondTests {
    @Test func activeBackupSendsOnTheActiveSlaveAndIgnoresTheBackup() throws {
        let lab = try BondLab(.activeBackup)
        #expect(lab.bond.macAddress == lab.slaves[0].macAddress)
        #expect(lab.bond.activeSlave === lab.bond.slaves[0])
        lab.transmit((0..<4).map { udpFrame(marker: UInt8($0)) })
        #expect(lab.sentPerSlave().map(\.count) == [4, 0])
        lab.arrive(on: 0, ethernetFrame(destination: lab.bond.macAddress, source: mac(0x99), marker: 1))
        lab.arrive(on: 1, ethernetFrame(destination: lab.bond.macAddress, source: mac(0x99), marker: 2))
        #expect(lab.upper.markers == [1])
        #expect(lab.upper.devices == [lab.bond.ifindex])
        #expect(lab.upper.packetTypes == [.host])
        #expect(lab.worker.drops[.bondInactiveSlave] == 1)
        #expect(lab.bond.slaveCounters(lab.bond.slaves[0]) == (rxPackets: 1, txPackets: 4))
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func activeBackupFailsOverWhenTheActiveSlaveLosesLinkAndAnnouncesItself() throws {
        let lab = try BondLab(.activeBackup)
        lab.slaves[0].carrier = false
        #expect(lab.bond.monitor(worker: lab.worker))
        #expect(lab.bond.activeSlave === lab.bond.slaves[1])
        #expect(lab.bond.failovers == 1)
        let announced = lab.sentPerSlave()
        #expect(announced[0].isEmpty)
        let garp = announced[1].compactMap(SentARP.init)
        #expect(garp.map(\.repr.senderProtocolAddress) == [ip("198.18.5.1")])
        #expect(garp.map(\.repr.targetProtocolAddress) == [ip("198.18.5.1")])
        #expect(garp.map(\.destination) == [.broadcast])
        #expect(garp.map(\.source) == [lab.bond.macAddress])

        lab.transmit([udpFrame(marker: 1)])
        #expect(lab.sentPerSlave().map(\.count) == [0, 1])
        // The old slave recovering does not take traffic back (no primary configured).
        lab.slaves[0].carrier = true
        #expect(!lab.bond.monitor(worker: lab.worker))
        #expect(lab.bond.activeSlave === lab.bond.slaves[1])
        // Setting the active slave administratively down fails over too.
        lab.core.setAdminUp(false, ifindex: lab.slaves[1].ifindex)
        #expect(lab.bond.monitor(worker: lab.worker))
        #expect(lab.bond.activeSlave === lab.bond.slaves[0])
        _ = lab.sentPerSlave()
        // No slave with link: counted drops.
        lab.slaves[0].carrier = false
        lab.bond.monitor(worker: lab.worker)
        #expect(lab.bond.activeSlave == nil)
        lab.transmit([udpFrame(marker: 2)])
        #expect(lab.worker.drops[.bondNoSlave] == 1)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func balanceRoundRobinAlternatesOverSlavesWithLink() throws {
        let lab = try BondLab(.balanceRR, slaves: 3)
        lab.transmit((0..<7).map { udpFrame(marker: UInt8($0)) })
        #expect(lab.sentPerSlave().map { $0.map { $0[42] } } == [[0, 3, 6], [1, 4], [2, 5]])
        lab.slaves[1].carrier = false
        lab.bond.monitor(worker: lab.worker)
        lab.transmit((0..<4).map { udpFrame(marker: UInt8($0)) })
        #expect(lab.sentPerSlave().map(\.count) == [2, 0, 2])
        // Both active: frames on any slave go up.
        lab.arrive(on: 2, ethernetFrame(destination: lab.bond.macAddress, source: mac(0x99), marker: 5))
        #expect(lab.upper.markers == [5])
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func balanceXORLayer2KeepsEachPeerOnOneSlave() throws {
        let lab = try BondLab(.balanceXOR, policy: .layer2)
        let peers = (0..<8).map { mac(UInt8(0x50 + $0)) }
        lab.transmit(peers.flatMap { peer in (0..<3).map { _ in udpFrame(destination: peer) } })
        let sent = lab.sentPerSlave()
        for (slave, frames) in sent.enumerated() {
            for frame in frames {
                // dst[5] ^ src[5] ^ 0x0800, modulo 2 slaves.
                #expect(Int((UInt32(frame[5] ^ frame[11]) ^ 0x0800) % 2) == slave)
            }
        }
        #expect(sent.map(\.count) == [12, 12])
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func balanceXORLayer34SpreadsFlowsAndKeepsEachFlowOnOneSlave() throws {
        let lab = try BondLab(.balanceXOR, policy: .layer34, slaves: 2)
        var flows: [UInt16: Set<Int>] = [:]
        for round in 0..<2 {
            lab.transmit((0..<64).map { udpFrame(sourcePort: 1000 + UInt16($0), marker: UInt8(round)) })
            for (slave, frames) in lab.sentPerSlave().enumerated() {
                for frame in frames { flows[UInt16(frame[34]) << 8 | UInt16(frame[35]), default: []].insert(slave) }
            }
        }
        #expect(flows.count == 64)
        #expect(flows.values.allSatisfy { $0.count == 1 })
        let onFirst = flows.values.filter { $0 == [0] }.count
        #expect(onFirst > 16 && onFirst < 48)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func layer34HashFollowsTheDocumentedFormula() {
        var frame = udpFrame(to: "198.18.6.1", sourcePort: 0x1234, destinationPort: 0x5678)
        let hash = frame.withUnsafeMutableBytes { BondHash.layer34($0.baseAddress!, length: $0.count) }
        // Ports word as in the header (little-endian load), xor both addresses, then fold.
        var h: UInt32 = 0x7856_3412 ^ 0x0105_12C6 ^ 0x0106_12C6
        h ^= h >> 16
        h ^= h >> 8
        #expect(hash == h >> 1)
        // A fragment hashes addresses only; non-IP falls back to layer2.
        frame[14 + 6] = 0x20
        let fragmentHash = frame.withUnsafeMutableBytes { BondHash.layer34($0.baseAddress!, length: $0.count) }
        var f: UInt32 = 0x0105_12C6 ^ 0x0106_12C6
        f ^= f >> 16
        f ^= f >> 8
        #expect(fragmentHash == f >> 1)
        var arp = arpFrame(.request, senderMAC: mac(0x0B), sender: ip("198.18.5.1"), target: ip("198.18.5.2"),
                           destination: mac(0x05))
        let arpHash = arp.withUnsafeMutableBytes { BondHash.layer34($0.baseAddress!, length: $0.count) }
        #expect(arpHash == (0x05 ^ 0x0B) ^ 0x0806)
    }
}
