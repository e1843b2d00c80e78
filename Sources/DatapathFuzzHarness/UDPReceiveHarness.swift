import Datapath
import DatapathCore
import DatapathWire

/// The fuzz harness for UDP receive (issue #13: "as they land: UDP/raw receive"): datagrams to a
/// router (198.18.1.1/24 on eth0) with sockets bound to 198.18.1.1:7, 0.0.0.0:8, 198.18.1.1:9
/// connected to 198.18.1.2:1000, 0.0.0.0:9, and two on 0.0.0.0:11 (broadcast receivers), one
/// datagram per 6-byte record:
///
///     [to: 1][port: 1][from: 1][length: 1][checksum: 1][fill: 1] …
///
/// `to` % 4: 198.18.1.1, 198.18.1.255, 255.255.255.255, 198.19.0.1 (not ours); port: 7 +
/// port % 6; from: 198.18.1.(2 + from % 3), source port 1000 + (from / 3) % 3; the payload is
/// `length` bytes of `fill` + their index; checksum % 7: 0 right, 1 none (zero), 2 wrong,
/// 3 right and marked verified by the ring, 4 wrong but marked verified, 5 a UDP length past
/// the packet, 6 a UDP length 4 bytes short of it (the datagram is the bytes it covers).
///
/// Invariants, trapping when broken: a socket receives only datagrams to its port (and its
/// address, and from its peer when connected), with exactly the bytes sent (up to the UDP
/// length); a datagram whose checksum is wrong and not vouched for, or whose UDP length runs
/// past the packet, reaches no socket; a unicast datagram reaches one socket at most; every
/// drop has a reason; the pool is back after every input.
public final class UDPReceiveHarness {
    let rig: HarnessRig
    var stack: Stack { rig.stack }
    var worker: Worker { rig.worker }
    let eth0: MemoryDevice, wire0: MemoryDevice
    /// What the datagram being delivered carries, and whether a socket may take it.
    var expected: [UInt8] = []
    var deliverable = true
    var deliveries = 0
    /// Datagrams sockets received so far (the seeds must produce some).
    public private(set) var delivered = 0

    final class Check: UDPReceiver, @unchecked Sendable {
        unowned let harness: UDPReceiveHarness
        let local: SocketAddress
        let peer: SocketAddress?
        init(_ harness: UDPReceiveHarness, local: SocketAddress, peer: SocketAddress? = nil) {
            self.harness = harness
            self.local = local
            self.peer = peer
        }
        func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
            for i in datagrams.indices {
                let skb = datagrams[i]
                precondition(harness.deliverable, "socket \(socket) got a datagram no socket may take")
                precondition(skb.udpLocal.port == local.port, "socket \(socket) got a datagram to port \(skb.udpLocal.port)")
                precondition(local.address == .zero || skb.udpLocal.address == local.address,
                             "socket \(socket) got a datagram to \(skb.udpLocal.address)")
                if let peer { precondition(skb.udpRemote == peer, "connected socket \(socket) got one from \(skb.udpRemote)") }
                precondition(skb.length == harness.expected.count
                             && (0..<skb.length).allSatisfy { skb.data.load(fromByteOffset: $0, as: UInt8.self) == harness.expected[$0] },
                             "socket \(socket) got other bytes than were sent")
                harness.deliveries += 1
                harness.delivered += 1
            }
            worker.cache.free(&datagrams)
            return 0
        }
    }

    public init() throws {
        rig = try HarnessRig { Stack(workers: 1, clock: $0) }
        (eth0, wire0) = MemoryDevice.pair("eth0", MACAddress(2, 0, 0, 0, 0, 1), "wire0", MACAddress(2, 0, 0, 0, 0, 0xA2),
                                          ringSize: 4096)
        try stack.addDevice(eth0)
        try stack.apply("""
            addr add 198.18.1.1/24 dev eth0
            neigh add 198.18.1.2 lladdr 02:00:00:00:00:a2 dev eth0
            neigh add 198.18.1.3 lladdr 02:00:00:00:00:a3 dev eth0
            neigh add 198.18.1.4 lladdr 02:00:00:00:00:a4 dev eth0
            """)
        let ours = IPv4Address(198, 18, 1, 1), peer = SocketAddress(IPv4Address(198, 18, 1, 2), 1000)
        let bindings: [(UInt32, SocketAddress, SocketAddress?)] = [
            (1, SocketAddress(ours, 7), nil), (2, .any(port: 8), nil), (3, SocketAddress(ours, 9), peer),
            (4, .any(port: 9), nil), (5, .any(port: 11), nil), (6, .any(port: 11), nil),
        ]
        for (id, local, remote) in bindings {
            try stack.udp.open(id, local: local, options: .reuseAddress, receiver: Check(self, local: local, peer: remote))
            if let remote { try stack.udp.connect(id, to: remote) }
        }
        rig.markBaseline()
    }

    /// Runs one input; traps when an invariant fails.
    public func run(_ input: UnsafeRawBufferPointer) {
        var offset = 0
        while offset + 6 <= input.count {
            let to = Int(input[offset]), port = Int(input[offset + 1]), from = Int(input[offset + 2])
            let length = Int(input[offset + 3]), mode = Int(input[offset + 4]) % 7, fill = input[offset + 5]
            offset += 6
            let destination = [IPv4Address(198, 18, 1, 1), IPv4Address(198, 18, 1, 255), .broadcast,
                               IPv4Address(198, 19, 0, 1)][to % 4]
            let source = IPv4Address(198, 18, 1, UInt8(2 + from % 3))
            let payload = (0..<length).map { fill &+ UInt8(truncatingIfNeeded: $0) }
            expected = mode == 6 ? Array(payload.prefix(max(0, length - 4))) : payload
            deliverable = mode != 2 && mode != 5
            deliveries = 0
            datagram(from: source, port: UInt16(1000 + (from / 3) % 3), to: destination, port: UInt16(7 + port % 6),
                     payload: payload, mode: mode)
            if to % 4 == 0 { precondition(deliveries <= 1, "a unicast datagram reached \(deliveries) sockets") }
            rig.drain(wire0)   // ICMP port unreachable and the like
        }
        rig.checkDropsAndPool()
    }

    func datagram(from source: IPv4Address, port sourcePort: UInt16, to destination: IPv4Address, port: UInt16,
                  payload: [UInt8], mode: Int) {
        guard let skb = worker.cache.allocate() else { return }
        skb.reserve(64)
        let total = 14 + 20 + 8 + payload.count
        guard let frame = skb.put(max(total, 60)) else { worker.cache.free(skb); return }
        frame.initializeMemory(as: UInt8.self, repeating: 0, count: max(total, 60))
        (destination == .broadcast || destination == IPv4Address(198, 18, 1, 255) ? MACAddress.broadcast : eth0.macAddress)
            .store(to: frame)
        MACAddress(2, 0, 0, 0, 0, 0xA2).store(to: frame + 6)
        frame.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 12, as: UInt16.self)
        IPv4Repr(source: source, destination: destination, protocol: .udp, ttl: 64, payloadLength: 8 + payload.count,
                 identification: 7, dontFragment: true, dscp: 0).emit(to: frame + 14)
        let udp = frame + 34
        udp.storeBytes(of: sourcePort.bigEndian, as: UInt16.self)
        udp.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
        let udpLength = mode == 5 ? 9 + payload.count : mode == 6 ? 8 + max(0, payload.count - 4) : 8 + payload.count
        udp.storeBytes(of: UInt16(udpLength).bigEndian, toByteOffset: 4, as: UInt16.self)
        payload.withUnsafeBytes { (udp + 8).copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(udp), byteCount: payload.count) }
        // The checksum over the pseudo-header and what the UDP length covers.
        var sum: UInt32 = (source.hostOrder >> 16) + (source.hostOrder & 0xFFFF)
            + (destination.hostOrder >> 16) + (destination.hostOrder & 0xFFFF) + 17 + UInt32(udpLength)
        let covered = min(udpLength, 8 + payload.count)
        for i in stride(from: 0, to: covered, by: 2) {
            let high = UInt32(udp.load(fromByteOffset: i, as: UInt8.self)) << 8
            let low = i + 1 < covered ? UInt32(udp.load(fromByteOffset: i + 1, as: UInt8.self)) : 0
            sum += high | low
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        var checksum = ~UInt16(sum)
        if checksum == 0 { checksum = 0xFFFF }
        switch mode {
        case 1: checksum = 0
        case 2, 4: checksum = checksum == 0x1234 ? 0x4321 : 0x1234
        default: break
        }
        udp.storeBytes(of: checksum.bigEndian, toByteOffset: 6, as: UInt16.self)
        if mode == 3 || mode == 4 { skb.checksumState = .unnecessary }
        rig.deliver(skb, on: eth0)
    }
}
