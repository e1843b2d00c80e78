import Datapath
import DatapathCore
import DatapathWire

/// The fuzz harness for the whole receive path (issue #13): a router on two in-memory devices
/// — eth0 198.18.1.1/24 (host A 198.18.1.2 a static neighbour), eth1 198.18.2.1/24 (host B),
/// 198.19.0.0/16 via host B, a UDP socket on port 7, a raw ICMP socket, a filter rule — on a
/// virtual clock. An input is a sequence of frames, each with the metadata an AF_PACKET ring
/// gives (the virtio-net header's checksum state and GSO fields):
///
///     [flags: 1 byte][gso size: 2][length: 2, big-endian][frame: length bytes] …
///
/// flags bit 0–1: checksum state (0 none, 1 verified, 2 partial); bits 2–3: GSO type (0 none,
/// 1 TCPv4, 2 UDP L4); bit 4: deliver on eth1 instead of eth0. After every input the invariants
/// hold or the harness traps: every frame the stack transmitted is well formed (an Ethernet
/// header, and for IPv4 a valid header checksum and a total length within the frame), every
/// drop has a reason (nothing counted as `.notSpecified`), and — once fragments and neighbour
/// entries have expired — every pool buffer is back.
public final class StackReceiveHarness {
    let clock = VirtualClock(start: 1_000_000_000_000)
    let pool: PacketPool
    let worker: Worker
    let stack: Stack
    let eth0: MemoryDevice, wire0: MemoryDevice
    let eth1: MemoryDevice, wire1: MemoryDevice
    let loopback: LoopbackDevice
    var batch = PacketBatch()
    let baseline: Int
    final class Consume: UDPReceiver, RawReceiver, @unchecked Sendable {
        func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
            worker.cache.free(&datagrams)
            return 0
        }
        func error(_ message: SocketErrorMessage, socket: UInt32, worker: Worker) {}
    }

    public init() throws {
        pool = try PacketPool(capacity: 4096)
        worker = Worker(pool: pool, clock: clock)
        stack = Stack(workers: 1, clock: clock)
        (eth0, wire0) = MemoryDevice.pair("eth0", MACAddress(2, 0, 0, 0, 0, 1), "wire0", MACAddress(2, 0, 0, 0, 0, 0xA2),
                                          ringSize: 4096)
        (eth1, wire1) = MemoryDevice.pair("eth1", MACAddress(2, 0, 0, 0, 0, 0x11), "wire1", MACAddress(2, 0, 0, 0, 0, 0xB2),
                                          ringSize: 4096)
        try stack.addDevice(eth0)
        try stack.addDevice(eth1)
        loopback = stack.link(named: "lo")!.device as! LoopbackDevice
        try stack.apply("""
            addr add 198.18.1.1/24 dev eth0
            addr add 198.18.2.1/24 dev eth1
            neigh add 198.18.1.2 lladdr 02:00:00:00:00:a2 dev eth0
            neigh add 198.18.2.2 lladdr 02:00:00:00:00:b2 dev eth1
            route add 198.19.0.0/16 via 198.18.2.2
            filter add input proto udp dport 9 drop
            """)
        let consume = Consume()
        try stack.udp.open(1, local: .any(port: 7), receiver: consume)
        try stack.raw.open(2, protocol: .icmp, receiver: consume)
        worker.cache.drainAll()
        baseline = pool.inUseCount
    }

    /// Runs one input; traps when an invariant fails.
    public func run(_ input: UnsafeRawBufferPointer) {
        var offset = 0
        while offset + 5 <= input.count {
            let flags = input[offset]
            let gsoSize = Int(input[offset + 1]) << 8 | Int(input[offset + 2])
            let length = Int(input[offset + 3]) << 8 | Int(input[offset + 4])
            offset += 5
            let take = min(length, input.count - offset, 2048)
            guard let skb = worker.cache.allocate() else { break }
            skb.reserve(64)
            if take > 0, let out = skb.put(take) {
                out.copyMemory(from: input.baseAddress! + offset, byteCount: take)
            }
            offset += take
            skb.checksumState = ChecksumState(rawValue: flags & 3 == 3 ? 0 : flags & 3)
            switch (flags >> 2) & 3 {
            case 1: skb.gsoType = .tcpv4
            case 2: skb.gsoType = .udpL4
            default: skb.gsoType = .none
            }
            skb.gsoSize = skb.gsoType == .none ? 0 : gsoSize
            if skb.checksumState == .partial {
                skb.checksumStart = skb.headroom + 34
                skb.checksumOffset = 6
            }
            let device = flags & 0x10 != 0 ? eth1 : eth0
            if !device.inject(skb) { worker.cache.free(skb) }
            receive(device)
            receiveLoopback()
        }
        checkTransmitted(wire0)
        checkTransmitted(wire1)
        // Let what waits expire: fragments, unresolved neighbours, and what they held.
        clock.advance(by: .seconds(120))
        stack.ipv4.expireFragments(worker: worker)
        for _ in 0..<8 {
            stack.neighbours.runTimers(worker: worker)
            clock.advance(by: .seconds(2))
        }
        stack.ipv4.expireFragments(worker: worker)
        receiveLoopback()
        checkTransmitted(wire0)
        checkTransmitted(wire1)
        precondition(worker.drops[.notSpecified] == 0, "a drop without a reason")
        worker.cache.drainAll()
        precondition(pool.inUseCount == baseline, "pool not at its baseline: \(pool.inUseCount) in use, \(baseline) before")
    }

    func receive(_ device: MemoryDevice) {
        while device.pending() > 0 {
            _ = device.receive(queue: 0, into: &batch, max: 256, worker: worker)
            stack.core.netifReceiveSkb(&batch, worker: worker)
        }
    }

    /// What the stack sent itself through lo, received (a few rounds: an answer may loop too).
    func receiveLoopback() {
        for _ in 0..<4 where loopback.pending() > 0 {
            _ = loopback.receive(queue: 0, into: &batch, max: 256, worker: worker)
            stack.core.netifReceiveSkb(&batch, worker: worker)
        }
    }

    /// Every frame sent is well formed; all are freed.
    func checkTransmitted(_ wire: MemoryDevice) {
        while wire.pending() > 0 {
            _ = wire.receive(queue: 0, into: &batch, max: 256, worker: worker)
            for i in batch.indices {
                let skb = batch[i]
                precondition(skb.length >= 14, "a transmitted frame shorter than an Ethernet header")
                if skb.data.loadUnaligned(fromByteOffset: 12, as: UInt16.self) == UInt16(0x0800).bigEndian, !skb.isGSO {
                    let ip = skb.length - 14
                    precondition(ip >= 20, "a transmitted IPv4 packet shorter than its header")
                    let header = IPv4Header(unchecked: skb.data + 14)
                    precondition(header.headerLength >= 20 && header.headerLength <= ip, "a transmitted IPv4 header length out of the frame")
                    precondition(Int(header.totalLength) <= ip, "a transmitted IPv4 total length past the frame")
                    precondition(header.isChecksumValid, "a transmitted IPv4 header checksum that does not verify")
                }
            }
            worker.cache.free(&batch)
        }
    }
}
