import Datapath
import DatapathCore
import DatapathWire

/// A UDP server on two in-memory devices whose replies come back as new requests: requests
/// from 198.18.2.2 (ports 4000–4015) to 198.18.1.1:7 arrive on eth0; the server's replies
/// route out of eth1 (198.18.2.0/24), whose `Bouncer` swaps the IP addresses and the ports —
/// which leaves both checksums valid — and puts the frame back on eth0's receive ring, already
/// addressed to eth0 (its MAC is the neighbour's). So each datagram circulates: MemoryDevice RX
/// → netif_receive_skb → ip_rcv → ip_local_deliver → udp_rcv → the socket's receiver →
/// (echo) UDP.send batch → ip_local_out → ip_output → neighbour → dev_queue_xmit → TX.
public final class UDPRig {
    public let pool: PacketPool
    public let worker: Worker
    public let stack: Stack
    public let eth0: MemoryDevice
    let eth1: Bouncer
    var batch = PacketBatch()
    public static let server = SocketAddress(IPv4Address(198, 18, 1, 1), 7)
    public static let client = IPv4Address(198, 18, 2, 2)

    /// `mode`: `.echo` sends every datagram back through the batch send; `.consume` hands each
    /// back to eth0's ring untouched (the receive path alone: udp_rcv → handler).
    public enum Mode { case echo, consume }

    /// `checksumOffload`: eth1 completes the checksums the stack leaves partial and eth0's
    /// receive marks them verified, as a NIC with checksum offload both ways does — the
    /// stack then neither sums a datagram it sends nor one it receives.
    public convenience init(mode: Mode, payload: Int = 64, datagrams: Int = 1024, checksumOffload: Bool = false) throws {
        try self.init(stack: Stack(workers: 1), pool: PacketPool(capacity: 8192), checksumOffload: checksumOffload)
        let receiver: UDPReceiver = mode == .echo ? EchoReceiver(stack.udp) : ReturnReceiver(eth0)
        try stack.udp.open(1, local: UDPRig.server, receiver: receiver)
        inject(datagrams, payload: payload)
    }

    /// The devices and addresses, no socket, no traffic yet.
    init(stack: Stack, pool: PacketPool, checksumOffload: Bool = false) throws {
        self.pool = pool
        worker = Worker(pool: pool)
        self.stack = stack
        eth0 = MemoryDevice(name: "eth0", macAddress: MACAddress(2, 0, 0, 0, 0, 1), ringSize: 4096)
        eth1 = Bouncer(into: eth0, checksumOffload: checksumOffload)
        try stack.addDevice(eth0)
        try stack.addDevice(eth1)
        try stack.apply("""
            addr add 198.18.1.1/24 dev eth0
            addr add 198.18.2.1/24 dev eth1
            neigh add 198.18.2.2 lladdr 02:00:00:00:00:01 dev eth1
            """)
    }

    /// Puts `datagrams` requests on eth0's receive ring.
    func inject(_ datagrams: Int, payload: Int) {
        for i in 0..<datagrams {
            let skb = worker.cache.allocate()!
            let frame = skb.put(14 + 28 + payload)!
            frame.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 14 + 28 + payload)
            eth0.macAddress.store(to: frame)
            MACAddress(2, 0, 0, 0, 0, 0xA).store(to: frame + 6)
            frame.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 12, as: UInt16.self)
            IPv4Repr(source: UDPRig.client, destination: UDPRig.server.address, protocol: .udp, ttl: 64,
                     payloadLength: 8 + payload, identification: 0, dontFragment: true, dscp: 0)
                .emit(to: frame + 14)
            UDPRepr(sourcePort: UInt16(4000 + i % 16), destinationPort: UDPRig.server.port, payloadLength: payload)
                .emit(to: frame + 34, source: UDPRig.client, destination: UDPRig.server.address)
            eth0.inject(skb)
        }
    }

    /// Runs `total` datagrams through the path.
    public func run(datagrams total: Int) {
        receiveLoop(eth0, core: stack.core, worker: worker, total: total, batch: &batch)
    }

    /// Frees what is left on the ring.
    public func drainRing() { drain(eth0, worker: worker) }
}

/// Echoes each datagram to its sender through the batch send: the skbs go back out in place.
final class EchoReceiver: UDPReceiver, @unchecked Sendable {
    let udp: UDP
    init(_ udp: UDP) { self.udp = udp }
    func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
        for i in datagrams.indices { datagrams[i].udpDestination = datagrams[i].udpRemote }
        _ = try? udp.send(&datagrams, from: socket, worker: worker)
        return 0
    }
}

/// Puts each received datagram's frame back on the ring it came from (the receive path alone).
final class ReturnReceiver: UDPReceiver, @unchecked Sendable {
    let device: MemoryDevice
    init(_ device: MemoryDevice) { self.device = device }
    func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
        for i in datagrams.indices {
            let skb = datagrams[i]
            _ = skb.push(skb.data - skb.macHeader)
        }
        _ = device.inject(&datagrams)
        worker.drop(&datagrams, .transmitRingFull)
        return 0
    }
}

/// eth1 of the UDP rig: swaps the reply's IP addresses (bytes 26–33) and UDP ports (34–37)
/// and puts it on eth0's receive ring as the next request. With `checksumOffload` it takes
/// partial checksums, and what it bounces arrives verified (`.unnecessary`), as between two
/// NICs that offload checksums (the swap leaves the pseudo-header sum as it was).
final class Bouncer: NetDevice, @unchecked Sendable {
    let name = "eth1"
    @exclusivity(unchecked) var ifindex = 0
    let macAddress = MACAddress(2, 0, 0, 0, 0, 2)
    let mtu = 1500
    let queueCount = 1
    let stats = DeviceStats(queues: 1)
    let supportsGSO = true
    let supportsChecksumOffload: Bool
    let target: MemoryDevice

    init(into target: MemoryDevice, checksumOffload: Bool) {
        self.target = target
        supportsChecksumOffload = checksumOffload
    }

    func receive(queue: Int, into batch: inout PacketBatch, max: Int, worker: Worker) -> Int { 0 }

    func transmit(queue: Int, _ batch: inout PacketBatch, worker: Worker) {
        for i in batch.indices {
            let frame = batch[i].data
            let addresses = frame.loadUnaligned(fromByteOffset: 26, as: UInt64.self)
            frame.storeBytes(of: addresses >> 32 | addresses << 32, toByteOffset: 26, as: UInt64.self)
            let ports = frame.loadUnaligned(fromByteOffset: 34, as: UInt32.self)
            frame.storeBytes(of: ports >> 16 | ports << 16, toByteOffset: 34, as: UInt32.self)
            if supportsChecksumOffload { batch[i].checksumState = .unnecessary }
        }
        _ = target.inject(&batch)
        worker.drop(&batch, .transmitRingFull)
    }
}

/// The async API's round on the same wiring: a `UDPSocket` echo on 198.18.1.1:7 whose app
/// side (the caller's task) takes batches with `receive(max:)` and answers each with `trySend`,
/// while a worker thread of its own runs the stack (busy-polling eth0): udp_rcv → the socket's
/// receive ring → the app → the send ring → the worker's tasklet → the batch send → TX → back.
public final class AsyncUDPRig {
    let rig: UDPRig
    public let group: WorkerGroup
    public let socket: UDPSocket
    public var stack: Stack { rig.stack }

    public init(payload: Int = 64, datagrams: Int = 512) throws {
        let pool = try PacketPool(capacity: 16384)
        rig = try UDPRig(stack: Stack(workers: 1), pool: pool)
        group = WorkerGroup(core: rig.stack.core, pool: pool, count: 1, pin: false, mode: .busyPoll)
        group.pollAllQueues(of: [rig.eth0])
        rig.stack.start(on: group)
        socket = try UDPSocket(rig.stack, bind: UDPRig.server, receiveBufferSize: 4 << 20, sendBufferSize: 4 << 20)
        rig.inject(datagrams, payload: payload)
        group.start()
    }

    /// Echoes `total` datagrams from the app's side; returns how many it echoed.
    public func run(datagrams total: Int) async throws -> Int {
        var echoed = 0
        while echoed < total {
            echoed += try await socket.receive(max: 256) { (batch: inout PacketBatch) throws(SocketError) -> Int in
                var sent = 0
                for i in batch.indices {
                    let skb = batch[i]
                    while true {
                        do throws(SocketError) {
                            try socket.trySend(skb.payload, to: skb.udpRemote)
                            break
                        } catch .wouldBlock {
                            continue
                        }
                    }
                    sent += 1
                }
                return sent
            }
        }
        return echoed
    }

    public func stop() {
        group.stop()
        socket.close()
        rig.drainRing()
    }
}
