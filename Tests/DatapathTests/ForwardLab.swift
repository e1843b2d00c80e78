import Datapath
import DatapathCore
import DatapathWire

/// A router on in-memory devices: `eth0` 198.18.1.1/24 wired to host A (198.18.1.2, played by
/// the test on `wire0`), `eth1` 198.18.2.1/24 wired to host B (198.18.2.2 on `wire1`), both hosts
/// permanent neighbours, 198.19.0.0/16 via host B. One worker on a virtual clock.
final class ForwardLab {
    let pool: PacketPool
    let clock = VirtualClock(start: 1_000_000_000_000)
    let worker: Worker
    let stack: Stack
    let eth0: MemoryDevice, wire0: MemoryDevice
    let eth1: MemoryDevice, wire1: MemoryDevice
    var batch = PacketBatch()
    let baseline: Int

    static let hostA = IPv4Address(198, 18, 1, 2)
    static let hostB = IPv4Address(198, 18, 2, 2)
    static let routerA = IPv4Address(198, 18, 1, 1)
    static let routerB = IPv4Address(198, 18, 2, 1)
    static let hostAMAC = mac(0xA2)
    static let hostBMAC = mac(0xB2)

    /// What carries host A's side: eth0 itself, or eth0 as the one slave of `bond0` (active-
    /// backup; the bond takes eth0's MAC) or the one port of `br0` (its own MAC), which then
    /// holds 198.18.1.1/24.
    enum Ingress { case device, bond, bridge }
    /// The device with 198.18.1.1: eth0, bond0 or br0.
    let ingressName: String

    init(rateLimits: ICMPRateLimitParameters = .linuxDefaults, cacheCapacity: Int = 4096,
         reassembly: ReassemblyParameters = .linuxDefaults, ingress: Ingress = .device, ringSize: Int = 4096,
         transmitQueueLength: Int = 1000, checksumOffload: Bool = false) throws {
        pool = try PacketPool(capacity: 4096)
        worker = Worker(pool: pool, clock: clock)
        stack = Stack(workers: 1, clock: clock, icmpRateLimits: rateLimits, routeCacheCapacity: cacheCapacity,
                      reassembly: reassembly)
        (eth0, wire0) = MemoryDevice.pair("eth0", mac(0x01), "wire0", ForwardLab.hostAMAC, ringSize: ringSize)
        (eth1, wire1) = MemoryDevice.pair("eth1", mac(0x11), "wire1", ForwardLab.hostBMAC, ringSize: ringSize)
        stack.core.transmitQueueLength = transmitQueueLength
        eth0.supportsChecksumOffload = checksumOffload
        eth1.supportsChecksumOffload = checksumOffload
        try stack.addDevice(eth0)
        try stack.addDevice(eth1)
        switch ingress {
        case .device: ingressName = "eth0"
        case .bond:
            ingressName = "bond0"
            try stack.apply("link add bond0 type bond mode active-backup\nlink set eth0 master bond0")
        case .bridge:
            ingressName = "br0"
            try stack.apply("link add br0 type bridge\nlink set eth0 master br0")
        }
        try stack.apply("""
            addr add 198.18.1.1/24 dev \(ingressName)
            addr add 198.18.2.1/24 dev eth1
            neigh add 198.18.1.2 lladdr \(ForwardLab.hostAMAC) dev \(ingressName)
            neigh add 198.18.2.2 lladdr \(ForwardLab.hostBMAC) dev eth1
            route add 198.19.0.0/16 via 198.18.2.2
            """)
        baseline = pool.inUseCount
    }


    /// An Ethernet frame carrying IPv4 `payload` (its first bytes are whatever the transport
    /// header is), addressed to `eth0` unless told otherwise.
    static func frame(source: IPv4Address = hostA, destination: IPv4Address, protocol number: IPProtocol = .udp,
                      ttl: UInt8 = 64, payload: [UInt8] = Array(0..<32), dontFragment: Bool = true,
                      identification: UInt16 = 0x1234, tos: UInt8 = 0,
                      toMAC: MACAddress = mac(0x01), fromMAC: MACAddress = hostAMAC) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 14 + 20 + payload.count)
        bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            toMAC.store(to: base)
            fromMAC.store(to: base + 6)
            base.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 12, as: UInt16.self)
            IPv4Repr(source: source, destination: destination, protocol: number, ttl: ttl, payloadLength: payload.count,
                     identification: identification, dontFragment: dontFragment, dscp: tos >> 2).emit(to: base + 14)
        }
        bytes.replaceSubrange(34..., with: payload)
        return bytes
    }

    /// `frame` with `options` (a multiple of 4 bytes) inserted after its 20-byte IPv4 header:
    /// header length, total length and checksum fixed up.
    static func withOptions(_ frame: [UInt8], _ options: [UInt8]) -> [UInt8] {
        var frame = frame
        frame.insert(contentsOf: options, at: 34)
        let headerLength = 20 + options.count
        frame[14] = 0x40 | UInt8(headerLength / 4)
        let total = frame.count - 14
        frame[16] = UInt8(total >> 8); frame[17] = UInt8(total & 0xFF)
        frame[24] = 0; frame[25] = 0
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(Array(frame[14..<(14 + headerLength)]), count: headerLength))
        frame[24] = UInt8(sum >> 8); frame[25] = UInt8(sum & 0xFF)
        return frame
    }

    /// An ICMP echo request frame with a valid checksum.
    static func echoRequest(to destination: IPv4Address, identifier: UInt16 = 0x4242, sequence: UInt16 = 1,
                            data: [UInt8] = Array(repeating: 0x5A, count: 24)) -> [UInt8] {
        var message: [UInt8] = [8, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xFF),
                                UInt8(sequence >> 8), UInt8(sequence & 0xFF)] + data
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(message, count: message.count))
        message[2] = UInt8(sum >> 8)
        message[3] = UInt8(sum & 0xFF)
        return frame(destination: destination, protocol: .icmp, payload: message, dontFragment: false)
    }

    /// An ICMP error from host B to the router's eth1 (type 3 unless told), its rest-of-header
    /// `info`, quoting `quoted` (an IPv4 packet, header first) as far as it goes.
    static func icmpErrorFromHostB(type: UInt8 = 3, code: UInt8, info: UInt32 = 0, quoting quoted: [UInt8]) -> [UInt8] {
        var message: [UInt8] = [type, code, 0, 0, UInt8(info >> 24), UInt8(info >> 16 & 0xFF), UInt8(info >> 8 & 0xFF),
                                UInt8(info & 0xFF)] + quoted
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(message, count: message.count))
        message[2] = UInt8(sum >> 8)
        message[3] = UInt8(sum & 0xFF)
        return frame(source: hostB, destination: routerB, protocol: .icmp, payload: message, toMAC: mac(0x11),
                     fromMAC: hostBMAC)
    }

    /// Delivers frames as if eth0 (or `device`) received them, and runs the receive path.
    func deliver(_ frames: [[UInt8]], on device: MemoryDevice? = nil, checksum: ChecksumState = .none,
                 prepare: (SKB) -> Void = { _ in }) {
        let device = device ?? eth0
        for frame in frames {
            let skb = worker.cache.allocate()!
            skb.reserve(64)
            skb.put(frame.count)!.copyMemory(from: frame, byteCount: frame.count)
            skb.checksumState = checksum
            prepare(skb)
            device.inject(skb)
        }
        while device.pending() > 0 {
            _ = device.receive(queue: 0, into: &batch, max: 256, worker: worker)
            stack.core.netifReceiveSkb(&batch, worker: worker)
        }
    }

    func deliver(_ frame: [UInt8], on device: MemoryDevice? = nil) { deliver([frame], on: device) }

    /// Frames that left through the device wired to `wire`, copied and freed.
    func sent(on wire: MemoryDevice) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while wire.pending() > 0 {
            _ = wire.receive(queue: 0, into: &batch, max: 256, worker: worker)
            frames += batch.indices.map { batch[$0].bytes }
            worker.cache.free(&batch)
        }
        return frames
    }

    func drops(_ reason: DropReason) -> UInt64 { worker.drops[reason] }

    /// Whether every skb went back to the pool.
    var poolIsAtBaseline: Bool {
        worker.cache.drainAll()
        return pool.inUseCount == baseline
    }
}

/// The IPv4 fields of a sent frame (after the Ethernet header).
struct SentIPv4 {
    let frame: [UInt8]
    init(_ frame: [UInt8]) { self.frame = frame }
    var ip: ArraySlice<UInt8> { frame[14...] }
    var destinationMAC: MACAddress { MACAddress(frame[0], frame[1], frame[2], frame[3], frame[4], frame[5]) }
    var sourceMAC: MACAddress { MACAddress(frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]) }
    var ttl: UInt8 { frame[22] }
    var protocolNumber: UInt8 { frame[23] }
    var source: IPv4Address { IPv4Address(frame[26], frame[27], frame[28], frame[29]) }
    var destination: IPv4Address { IPv4Address(frame[30], frame[31], frame[32], frame[33]) }
    var headerLength: Int { Int(frame[14] & 0x0F) * 4 }
    var totalLength: Int { Int(frame[16]) << 8 | Int(frame[17]) }
    var flagsAndOffset: UInt16 { UInt16(frame[20]) << 8 | UInt16(frame[21]) }
    var payload: ArraySlice<UInt8> { frame[(14 + headerLength)..<(14 + totalLength)] }
    var options: [UInt8] { Array(frame[34..<(14 + headerLength)]) }
    var headerChecksumIsValid: Bool {
        InternetChecksum.fold(InternetChecksum.sum(Array(frame[14..<(14 + headerLength)]), count: headerLength)) == 0xFFFF
    }
}
