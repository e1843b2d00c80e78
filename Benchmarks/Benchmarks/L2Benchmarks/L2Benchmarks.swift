import Benchmark
import BenchmarkSupport
import Datapath
import DatapathGenerator
import DatapathCore
import DatapathWire

// One scaled iteration is one packet, so `throughput` reads directly as packets/s.
let benchmarks: @Sendable () -> Void = {
    usePacketBenchmarkDefaults()

    // Two ports; p1's wire leads straight back into p0, so frames circulate: each pass is
    // p0 receive → eth_type_trans → br_handle_frame (learn source, FDB hit) → p1 transmit.
    Benchmark("Bridge forwarding, known unicast, 2 in-memory ports") { benchmark in
        let pool = try! PacketPool(capacity: 4096)
        let worker = Worker(pool: pool)
        let core = NetCore()
        let bridge = BridgeDevice(name: "br0", core: core, workers: 1)
        core.register(bridge)
        let p0 = MemoryDevice(name: "p0", macAddress: MACAddress(2, 0, 0, 0, 1, 0), ringSize: 1024)
        let p1 = MemoryDevice(name: "p1", macAddress: MACAddress(2, 0, 0, 0, 1, 1), ringSize: 1024)
        p1.peer = p0
        core.register(p0)
        core.register(p1)
        bridge.addPort(p0)
        bridge.addPort(p1)
        let destination = MACAddress(2, 0, 0, 0, 0, 0xB)
        bridge.fdb.addStatic(destination, port: 1, now: 0)
        fill(p0, count: 512, worker: worker, destination: destination, source: MACAddress(2, 0, 0, 0, 0, 0xA))
        let total = benchmark.scaledIterations.count
        var batch = PacketBatch()
        benchmark.startMeasurement()
        receiveLoop(p0, core: core, worker: worker, total: total, batch: &batch)
        benchmark.stopMeasurement()
        drain(p0, worker: worker)
        precondition(bridge[.forwarded] >= UInt64(total))
    }

    // neigh_hh_output alone: one seqlocked read of the cached header per batch, then a 14-byte
    // header (two 8-byte stores) per packet; the pull that undoes it is included.
    Benchmark("Neighbour hh output, 14-byte header, batches of 256") { benchmark in
        let setup = try! NeighbourSetup()
        var batch = setup.packets(256)
        benchmark.startMeasurement()
        for _ in 0..<(benchmark.scaledIterations.count / 256) {
            setup.neighbour.writeCachedHeaders(&batch, worker: setup.worker)
            for i in batch.indices { _ = batch[i].pull(14) }
        }
        benchmark.stopMeasurement()
        setup.worker.cache.free(&batch)
    }

    // neigh_output → dev_queue_xmit → an in-memory device whose wire is drained back.
    Benchmark("neigh_output → dev_queue_xmit, in-memory device") { benchmark in
        let setup = try! NeighbourSetup()
        var batch = setup.packets(256)
        benchmark.startMeasurement()
        for _ in 0..<(benchmark.scaledIterations.count / 256) {
            setup.neighbours.output(&batch, via: setup.neighbour, worker: setup.worker)
            _ = setup.wire.receive(queue: 0, into: &batch, max: 256, worker: setup.worker)
            for i in batch.indices { _ = batch[i].pull(14) }
        }
        benchmark.stopMeasurement()
        setup.worker.cache.free(&batch)
    }

    // The layer3+4 transmit hash and slave choice over 4 slaves, on 256 UDP flows.
    Benchmark("Bond xmit hash, layer3+4, 4 slaves") { benchmark in
        let frames = udpFrames(256)
        defer { frames.deallocate() }
        var counts = (0, 0, 0, 0)
        benchmark.startMeasurement()
        for _ in 0..<(benchmark.scaledIterations.count / 256) {
            for i in 0..<256 {
                let hash = BondHash.layer34(frames + i * 64, length: 60)
                switch hash % 4 {
                case 0: counts.0 &+= 1
                case 1: counts.1 &+= 1
                case 2: counts.2 &+= 1
                default: counts.3 &+= 1
                }
            }
        }
        benchmark.stopMeasurement()
        blackHole(counts)
    }

    // bond_start_xmit in balance-xor: hash, split into per-slave batches, 4 in-memory slaves
    // whose wires are drained back.
    Benchmark("bond_start_xmit balance-xor layer3+4 → 4 in-memory slaves") { benchmark in
        let pool = try! PacketPool(capacity: 4096)
        let worker = Worker(pool: pool)
        let core = NetCore()
        let bond = BondDevice(name: "bond0", mode: .balanceXOR, hashPolicy: .layer34, core: core, workers: 1)
        core.register(bond)
        var wires: [MemoryDevice] = []
        for i in 0..<4 {
            let (slave, wire) = MemoryDevice.pair("s\(i)", MACAddress(2, 0, 0, 0, 2, UInt8(i)),
                                                  "w\(i)", MACAddress(2, 0, 0, 0, 3, UInt8(i)))
            core.register(slave)
            core.register(wire)
            bond.addSlave(slave)
            wires.append(wire)
        }
        let frames = udpFrames(256)
        defer { frames.deallocate() }
        var batch = PacketBatch()
        for i in 0..<256 {
            let skb = worker.cache.allocate()!
            skb.put(60)!.copyMemory(from: frames + i * 64, byteCount: 60)
            batch.append(skb)
        }
        benchmark.startMeasurement()
        for _ in 0..<(benchmark.scaledIterations.count / 256) {
            core.devQueueXmit(&batch, device: bond, worker: worker)
            for wire in wires { _ = wire.receive(queue: 0, into: &batch, max: 256, worker: worker) }
        }
        benchmark.stopMeasurement()
        worker.cache.free(&batch)
    }

    // arp_rcv → arp_process for requests to our address: learn the asker (neigh_event_ns, under
    // the table lock) and answer in place. Each request is rewritten from a template first.
    Benchmark("ARP reply rate, requests for a local address") { benchmark in
        let setup = try! NeighbourSetup()
        let request = arpRequest(sender: MACAddress(2, 0, 0, 0, 0, 0xAA), from: IPv4Address(198, 18, 0, 2),
                                 target: IPv4Address(198, 18, 0, 1))
        defer { request.deallocate() }
        var batch = PacketBatch()
        for _ in 0..<256 {
            let skb = setup.worker.cache.allocate()!
            skb.reserve(64)
            batch.append(skb)
        }
        let offset = batch.slots[0].headroom
        benchmark.startMeasurement()
        for _ in 0..<(benchmark.scaledIterations.count / 256) {
            for i in batch.indices {
                let skb = batch[i]
                // Empty again at the buffer's start, then 14 bytes past the reserved room.
                _ = skb.push(skb.headroom)
                skb.trim(to: 0)
                skb.reserve(offset + 14)
                skb.length = 28
                (skb.data - 14).copyMemory(from: request, byteCount: 42)
                skb.inputIfindex = setup.device.ifindex
                skb.packetType = .broadcast
            }
            setup.arp.receive(&batch, worker: setup.worker)
            _ = setup.wire.receive(queue: 0, into: &batch, max: 256, worker: setup.worker)
        }
        benchmark.stopMeasurement()
        precondition(setup.arp[.repliesSent] > 0)
        setup.worker.cache.free(&batch)
    }
}

/// A device eth0 (198.18.0.1/24) wired to `wire`, a neighbour table with ARP, and one
/// PERMANENT neighbour.
struct NeighbourSetup {
    let pool: PacketPool
    let worker: Worker
    let core = NetCore()
    let addresses = InterfaceAddresses()
    let device: MemoryDevice
    let wire: MemoryDevice
    let neighbours: NeighbourTable
    let arp: ARPHandler
    let neighbour: Neighbour

    init() throws {
        pool = try PacketPool(capacity: 4096)
        worker = Worker(pool: pool)
        (device, wire) = MemoryDevice.pair("eth0", MACAddress(2, 0, 0, 0, 0, 1), "wire0", MACAddress(2, 0, 0, 0, 0, 2))
        core.register(device)
        core.register(wire)
        addresses.add(InterfaceAddress(address: IPv4Address(198, 18, 0, 1), prefixLength: 24, ifindex: device.ifindex))
        neighbours = NeighbourTable(core: core, addresses: addresses, clock: worker.clock)
        arp = ARPHandler(neighbours: neighbours, workers: 1)
        neighbour = neighbours.addStatic(IPv4Address(198, 18, 0, 2), linkAddress: MACAddress(2, 0, 0, 0, 0, 2), device: device)!
    }

    /// IPv4-sized packets with headroom, `data` at the network header.
    func packets(_ count: Int) -> PacketBatch {
        var batch = PacketBatch()
        for _ in 0..<count {
            let skb = worker.cache.allocate()!
            skb.reserve(64)
            skb.put(46)!.initializeMemory(as: UInt8.self, repeating: 0x45, count: 46)
            batch.append(skb)
        }
        return batch
    }
}

/// `count` 60-byte UDP frames, 64 bytes apart, one flow (source port) each.
func udpFrames(_ count: Int) -> UnsafeMutableRawPointer {
    let generator = try! UDPFlowGenerator({
        var spec = UDPFlowGenerator.Specification(
            sourceMAC: MACAddress(2, 0, 0, 0, 0, 1), destinationMAC: MACAddress(2, 0, 0, 0, 0, 2),
            source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 19, 0, 1))
        spec.flows = count
        return spec
    }())
    let memory = UnsafeMutableRawPointer.allocate(byteCount: count * 64, alignment: 64)
    for flow in 0..<count {
        var frame = generator.template
        let port = UInt16(1024 + flow)
        frame[34] = UInt8(port >> 8)
        frame[35] = UInt8(port & 0xFF)
        (memory + flow * 64).copyMemory(from: frame, byteCount: min(60, frame.count))
    }
    return memory
}

/// A 42-byte Ethernet + ARP request.
func arpRequest(sender: MACAddress, from: IPv4Address, target: IPv4Address) -> UnsafeMutableRawPointer {
    let memory = UnsafeMutableRawPointer.allocate(byteCount: 42, alignment: 8)
    let ethernet = EthernetHeader(unchecked: memory)
    ethernet.destination = .broadcast
    ethernet.source = sender
    ethernet.etherType = .arp
    ARPRepr(operation: .request, senderHardwareAddress: sender, senderProtocolAddress: from,
            targetHardwareAddress: .zero, targetProtocolAddress: target).emit(to: memory + 14)
    return memory
}
