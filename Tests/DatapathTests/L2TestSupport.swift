import Datapath
import DatapathCore
import DatapathWire

func mac(_ last: UInt8, _ fifth: UInt8 = 0) -> MACAddress { MACAddress(2, 0, 0, 0, fifth, last) }
func ip(_ text: String) -> IPv4Address { IPv4Address(text)! }

/// An Ethernet + ARP frame as bytes.
func arpFrame(_ operation: ARPOperation, senderMAC: MACAddress, sender: IPv4Address, targetMAC: MACAddress = .zero,
              target: IPv4Address, destination: MACAddress = .broadcast) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 42)
    bytes.withUnsafeMutableBytes { raw in
        let base = raw.baseAddress!
        let ethernet = EthernetHeader(unchecked: base)
        ethernet.destination = destination
        ethernet.source = senderMAC
        ethernet.etherType = .arp
        ARPRepr(operation: operation, senderHardwareAddress: senderMAC, senderProtocolAddress: sender,
                targetHardwareAddress: targetMAC, targetProtocolAddress: target).emit(to: base + 14)
    }
    return bytes
}

/// An Ethernet frame with the given addresses and a payload whose first byte is `marker`.
func ethernetFrame(destination: MACAddress, source: MACAddress, etherType: UInt16 = 0x0800, marker: UInt8 = 0,
                   length: Int = 60) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: length)
    bytes.withUnsafeMutableBytes { raw in
        destination.store(to: raw.baseAddress!)
        source.store(to: raw.baseAddress! + 6)
    }
    bytes[12] = UInt8(etherType >> 8)
    bytes[13] = UInt8(etherType & 0xFF)
    bytes[14] = marker
    return bytes
}

/// Parsed ARP fields of a frame the stack sent.
struct SentARP: Equatable {
    var destination: MACAddress
    var source: MACAddress
    var repr: ARPRepr

    init?(_ frame: [UInt8]) {
        guard frame.count >= 42, frame[12] == 0x08, frame[13] == 0x06 else { return nil }
        var copy = frame
        let parsed: (MACAddress, MACAddress, ARPRepr)? = copy.withUnsafeMutableBytes { raw in
            let ethernet = EthernetHeader(unchecked: raw.baseAddress!)
            guard let arp = ARPPacket(raw.baseAddress! + 14, length: raw.count - 14) else { return nil }
            return (ethernet.destination, ethernet.source, ARPRepr(parsing: arp))
        }
        guard let parsed else { return nil }
        (destination, source, repr) = parsed
    }
}

/// One stack device `eth0` (198.18.0.1/24) wired to a peer `wire0` the test plays, a worker on
/// a virtual clock, the neighbour table and ARP.
final class NeighbourLab {
    let pool: PacketPool
    let clock = VirtualClock(start: 1_000_000_000_000)
    let worker: Worker
    let core = NetCore()
    let addresses = InterfaceAddresses()
    let eth0: MemoryDevice
    let wire0: MemoryDevice
    let neighbours: NeighbourTable
    let arp: ARPHandler
    var batch = PacketBatch()
    static let local = IPv4Address(198, 18, 0, 1)
    static let peer = IPv4Address(198, 18, 0, 2)
    static let peerMAC = mac(0xAA)

    init(parameters: NeighbourParameters = .linuxDefaults) throws {
        pool = try PacketPool(capacity: 2048)
        worker = Worker(pool: pool, clock: clock)
        (eth0, wire0) = MemoryDevice.pair("eth0", mac(1), "wire0", NeighbourLab.peerMAC)
        core.register(eth0)
        core.register(wire0)
        addresses.add(InterfaceAddress(address: NeighbourLab.local, prefixLength: 24, ifindex: eth0.ifindex))
        neighbours = NeighbourTable(core: core, addresses: addresses, clock: clock, parameters: parameters, seed: 7)
        arp = ARPHandler(neighbours: neighbours, workers: 1)
        arp.register()
    }


    /// Frames eth0 sent (they arrive on wire0), freed after copying.
    func sent() -> [[UInt8]] {
        _ = wire0.receive(queue: 0, into: &batch, max: 256, worker: worker)
        let frames = batch.indices.map { batch[$0].bytes }
        worker.cache.free(&batch)
        return frames
    }

    /// Delivers `frame` as if eth0 received it from the wire.
    func deliver(_ frame: [UInt8]) {
        let skb = worker.cache.allocate()!
        skb.reserve(64)
        skb.put(frame.count)!.copyMemory(from: frame, byteCount: frame.count)
        eth0.inject(skb)
        _ = eth0.receive(queue: 0, into: &batch, max: 256, worker: worker)
        core.netifReceiveSkb(&batch, worker: worker)
    }

    /// IPv4-looking packets (data at the network header) whose first payload byte is the marker.
    func packets(_ markers: [UInt8]) -> PacketBatch {
        var out = PacketBatch()
        for marker in markers {
            let skb = worker.cache.allocate()!
            skb.reserve(64)
            let p = skb.put(28)!
            p.initializeMemory(as: UInt8.self, repeating: 0, count: 28)
            p.storeBytes(of: 0x45, as: UInt8.self)
            p.storeBytes(of: marker, toByteOffset: 20, as: UInt8.self)
            out.append(skb)
        }
        return out
    }

    /// Sends packets with these markers through `neighbour`.
    func output(_ markers: [UInt8], via neighbour: Neighbour) {
        var out = packets(markers)
        neighbours.output(&out, via: neighbour, worker: worker)
    }

    func advance(seconds: Double) {
        clock.advance(by: .seconds(seconds))
        neighbours.runTimers(worker: worker)
    }

    func state(_ address: IPv4Address = NeighbourLab.peer) -> NeighbourState? {
        neighbours.state(of: address, ifindex: eth0.ifindex)
    }

    /// The peer answers our request for it.
    func peerReplies(from senderMAC: MACAddress = NeighbourLab.peerMAC) {
        deliver(arpFrame(.reply, senderMAC: senderMAC, sender: NeighbourLab.peer, targetMAC: eth0.macAddress,
                         target: NeighbourLab.local, destination: eth0.macAddress))
    }

    /// A REACHABLE entry for the peer.
    func resolvedPeer() -> Neighbour {
        let neighbour = neighbours.lookupOrCreate(NeighbourLab.peer, device: eth0)!
        output([0], via: neighbour)
        peerReplies()
        _ = sent()
        return neighbour
    }
}
