import Datapath
import DatapathCore
import DatapathWire

/// A router on two in-memory devices whose output is wired back to its input: eth1 transmits
/// into `Reflector`, which optionally draws a new random destination in 198.19.0.0/16, puts the
/// TTL back to 255 when it is nearly spent (packets start at 255, so once every ~250 rounds),
/// patches the checksum for what it changed, and puts the frame back on eth0's receive ring
/// (addressed to eth0 already: eth0's MAC is the next hop's). So every packet circulates
/// through the whole path: MemoryDevice RX → netif_receive_skb → ip_rcv (checksum verified) →
/// NF PREROUTING (empty) → ip_rcv_finish + route cache → ip_forward → NF FORWARD → ip_output →
/// NF POSTROUTING → ip_finish_output → ip_finish_output2 → neigh_output (hh cache) →
/// dev_queue_xmit → TX — in the fast path's one loop (`IPv4.receive(_:ifindex:macWord:worker:)`), or stage by stage
/// with `fastPath: false`.
/// The reflector's few stores per packet are inside the measurement.
public final class ForwardRig {
    public let pool: PacketPool
    public let worker: Worker
    public let stack: Stack
    public let eth0: MemoryDevice
    let eth1: Reflector
    var batch = PacketBatch()

    /// `bondedIngress`: eth0 is the one slave of an active-backup `bond0` that holds
    /// 198.18.1.1 (the bond's rx_handler runs first, then the path on bond0).
    public init(randomDestinations: Bool, cacheEnabled: Bool = true, fastPath: Bool = true,
                bondedIngress: Bool = false) throws {
        pool = try PacketPool(capacity: 8192)
        worker = Worker(pool: pool)
        stack = Stack(workers: 1)
        eth0 = MemoryDevice(name: "eth0", macAddress: MACAddress(2, 0, 0, 0, 0, 1), ringSize: 4096)
        eth1 = Reflector(into: eth0, randomDestinations: randomDestinations)
        try stack.addDevice(eth0)
        try stack.addDevice(eth1)
        if bondedIngress { try stack.apply("link add bond0 type bond mode active-backup\nlink set eth0 master bond0") }
        try stack.apply("""
            addr add 198.18.1.1/24 dev \(bondedIngress ? "bond0" : "eth0")
            addr add 198.18.2.1/24 dev eth1
            neigh add 198.18.2.2 lladdr 02:00:00:00:00:01 dev eth1
            route add 198.19.0.0/16 via 198.18.2.2
            """)
        stack.ipv4.setRouteCacheEnabled(cacheEnabled)
        stack.ipv4.fastPath = fastPath
        for i in 0..<1024 {
            let skb = worker.cache.allocate()!
            let data = skb.put(60)!
            data.initializeMemory(as: UInt8.self, repeating: 0, count: 60)
            eth0.macAddress.store(to: data)
            MACAddress(2, 0, 0, 0, 0, 0xA).store(to: data + 6)
            data.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 12, as: UInt16.self)
            IPv4Repr(source: IPv4Address(198, 18, 1, 2), destination: IPv4Address(198, 19, UInt8(i >> 8), UInt8(i & 0xFF)),
                     protocol: .udp, ttl: 255, payloadLength: 26, identification: 0, dontFragment: true, dscp: 0)
                .emit(to: data + 14)
            eth0.inject(skb)
        }
    }


    /// Runs `total` packets through the whole path. `quiescent`: the worker reports a
    /// quiescent state before each batch, as `WorkerGroup`'s loop does — needed while another
    /// thread changes the tables (the FIB reuses what it replaced only after grace periods).
    public func run(packets total: Int, quiescent: Bool = false) {
        guard quiescent else {
            receiveLoop(eth0, core: stack.core, worker: worker, total: total, batch: &batch)
            return
        }
        let quiescence = stack.core.quiescence
        defer { quiescence.offline(worker) }
        var done = 0
        while done < total {
            quiescence.quiescent(worker)
            let n = eth0.receive(queue: 0, into: &batch, max: 256, worker: worker)
            stack.core.netifReceiveSkb(&batch, worker: worker)
            done &+= n
        }
    }

    /// Frees what is left on the ring.
    public func drainRing() { drain(eth0, worker: worker) }

    /// The stages the rig's path runs through, in path order.
    public var stages: [StageID] {
        [stack.core.receiveStage, stack.ipv4.fastForwardStage, stack.ipv4.rcvStage, stack.ipv4.routeStage,
         stack.ipv4.forwardStage, stack.ipv4.finishOutputStage]
    }
}

/// eth1 of the rig: transmit = maybe a new destination, the TTL back to 255 when nearly spent,
/// and into eth0's receive ring.
final class Reflector: NetDevice, @unchecked Sendable {
    let name = "eth1"
    @exclusivity(unchecked) var ifindex = 0
    let macAddress = MACAddress(2, 0, 0, 0, 0, 2)
    let mtu = 1500
    let queueCount = 1
    let stats = DeviceStats(queues: 1)
    /// Like the AF_PACKET devices the forwarder drives (virtio-net headers on), it takes GSO
    /// packets whole, so dev_queue_xmit does not look for them (none are sent here).
    let supportsGSO = true
    let target: MemoryDevice
    let randomDestinations: Bool
    /// Xorshift32 (Marsaglia 2003): random enough for destinations, and cheap, since the rig's
    /// own work is inside the measurement.
    var random: UInt32 = 0x9E37_79B9

    init(into target: MemoryDevice, randomDestinations: Bool) {
        self.target = target
        self.randomDestinations = randomDestinations
    }

    func receive(queue: Int, into batch: inout PacketBatch, max: Int, worker: Worker) -> Int { 0 }

    func transmit(queue: Int, _ batch: inout PacketBatch, worker: Worker) {
        for i in batch.indices {
            let ip = batch[i].data + 14
            let ttl = UInt32(ip.load(fromByteOffset: 8, as: UInt8.self))
            guard randomDestinations || ttl < 4 else { continue }
            // RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), over the 16-bit words changed: the
            // TTL|protocol word when the TTL is back to 255, the destination's low word.
            var sum = UInt32(~UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 10, as: UInt16.self)))
            if ttl < 4 {
                let protocolByte = UInt32(ip.load(fromByteOffset: 9, as: UInt8.self))
                sum = sum &+ (0xFFFF &- (ttl << 8 | protocolByte)) &+ (0xFF00 | protocolByte)
                ip.storeBytes(of: UInt8(255), toByteOffset: 8, as: UInt8.self)
            }
            if randomDestinations {
                let old = UInt32(UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 18, as: UInt16.self)))
                random ^= random << 13
                random ^= random >> 17
                random ^= random << 5
                let new = random & 0xFFFF
                ip.storeBytes(of: UInt16(new).bigEndian, toByteOffset: 18, as: UInt16.self)
                sum = sum &+ (0xFFFF &- old) &+ new
            }
            sum = (sum & 0xFFFF) &+ (sum >> 16)
            sum = (sum & 0xFFFF) &+ (sum >> 16)
            ip.storeBytes(of: (~UInt16(truncatingIfNeeded: sum)).bigEndian, toByteOffset: 10, as: UInt16.self)
        }
        _ = target.inject(&batch)
        worker.drop(&batch, .transmitRingFull)
    }
}

