import Datapath
import DatapathCore
import DatapathWire

/// The fuzz harness for IPv4 reassembly (issue #13: "reassembly fed fragment sequences"): the
/// input is a sequence of 6-byte records, each a fragment the harness builds — a valid IPv4
/// header (so the fuzzer spends its effort on offsets, lengths and order, not checksums) to
/// 198.18.1.1, UDP, from one of two hosts — or a clock step:
///
///     [what: 1][offset: 2, big-endian, in 8-byte units][length: 2, big-endian][plan: 1] …
///
/// `what` bits 0–2: the datagram (identification 0x4200 + n); bit 3: more fragments; bit 4:
/// from host B instead of A; bits 5–6: 0–1 a fragment, 2 also DF, 3 a clock step of `plan`
/// seconds with expiry. A fragment's payload byte at datagram offset `o` is the UDP header's
/// (source port 1000 + n, port 7, length 8 + 16 × `plan`, no checksum) below 8 and
/// `pattern(n, o)` above, so every fragment of a datagram agrees with every other.
///
/// Invariants, trapping when broken: every datagram a UDP socket on port 7 receives has the
/// pattern's bytes throughout (reassembly put every piece at its offset); fragment memory never
/// exceeds the threshold; every drop has a reason; what the stack sends (ICMP time exceeded)
/// is well formed; once everything expired, every pool buffer is back.
public final class ReassemblyHarness {
    let rig: HarnessRig
    var stack: Stack { rig.stack }
    var worker: Worker { rig.worker }
    let eth0: MemoryDevice, wire0: MemoryDevice
    static let threshold = 128 << 10
    static let hostA = IPv4Address(198, 18, 1, 2), hostB = IPv4Address(198, 18, 1, 3)
    static let macA = MACAddress(2, 0, 0, 0, 0, 0xA2), macB = MACAddress(2, 0, 0, 0, 0, 0xA3)

    /// The payload byte of datagram `n` at offset `o` (from the UDP header's start), o ≥ 8.
    @inline(__always)
    static func pattern(_ n: Int, _ o: Int) -> UInt8 { UInt8(truncatingIfNeeded: o &* 7 &+ n &* 31 &+ 1) }

    final class Verify: UDPReceiver, @unchecked Sendable {
        var delivered = 0
        func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
            for i in datagrams.indices {
                let skb = datagrams[i]
                let n = Int(UDPHeader(unchecked: skb.transportHeader).sourcePort) - 1000
                precondition((0..<8).contains(n), "a datagram from a port the harness never used")
                for j in 0..<skb.length {
                    precondition(skb.data.load(fromByteOffset: j, as: UInt8.self) == ReassemblyHarness.pattern(n, 8 + j),
                                 "reassembled datagram \(n): byte \(8 + j) is not what its fragment carried")
                }
                delivered += 1
            }
            worker.cache.free(&datagrams)
            return 0
        }
    }
    let verify = Verify()
    /// Datagrams the socket received whole so far (the seeds must produce some: a harness that
    /// never reassembles checks nothing).
    public var delivered: Int { verify.delivered }

    public init() throws {
        var limits = ReassemblyParameters()
        limits.highThreshold = ReassemblyHarness.threshold
        limits.maximumQueues = 16
        rig = try HarnessRig { Stack(workers: 1, clock: $0, reassembly: limits) }
        (eth0, wire0) = MemoryDevice.pair("eth0", MACAddress(2, 0, 0, 0, 0, 1), "wire0", ReassemblyHarness.macA,
                                          ringSize: 4096)
        try stack.addDevice(eth0)
        try stack.apply("""
            addr add 198.18.1.1/24 dev eth0
            neigh add 198.18.1.2 lladdr 02:00:00:00:00:a2 dev eth0
            neigh add 198.18.1.3 lladdr 02:00:00:00:00:a3 dev eth0
            """)
        try stack.udp.open(1, local: .any(port: 7), receiver: verify)
        rig.markBaseline()
    }

    /// Runs one input; traps when an invariant fails.
    public func run(_ input: UnsafeRawBufferPointer) {
        var offset = 0
        while offset + 6 <= input.count {
            let what = input[offset]
            let units = (Int(input[offset + 1]) << 8 | Int(input[offset + 2])) & 0x1FFF
            let length = (Int(input[offset + 3]) << 8 | Int(input[offset + 4])) % 1481
            let plan = Int(input[offset + 5])
            offset += 6
            if (what >> 5) & 3 == 3 {
                rig.clock.advance(by: .seconds(Int(plan)))
                stack.ipv4.expireFragments(worker: worker)
            } else {
                inject(datagram: Int(what & 7), more: what & 8 != 0, fromB: what & 0x10 != 0,
                       dontFragment: (what >> 5) & 3 == 2, units: units, length: length, plan: plan)
            }
            precondition(stack.ipv4.reassemblyQueues(worker: 0).bytes <= ReassemblyHarness.threshold,
                         "fragment memory above its threshold")
            drainWire()
        }
        rig.clock.advance(by: .seconds(31))
        stack.ipv4.expireFragments(worker: worker)
        drainWire()
        precondition(stack.ipv4.reassemblyQueues(worker: 0).datagrams == 0, "a datagram outlived its timeout")
        rig.checkDropsAndPool()
    }

    func inject(datagram n: Int, more: Bool, fromB: Bool, dontFragment: Bool, units: Int, length: Int, plan: Int) {
        guard let skb = worker.cache.allocate() else { return }
        skb.reserve(64)
        guard let frame = skb.put(34 + length) else { worker.cache.free(skb); return }
        eth0.macAddress.store(to: frame)
        (fromB ? ReassemblyHarness.macB : ReassemblyHarness.macA).store(to: frame + 6)
        frame.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 12, as: UInt16.self)
        let start = units * 8
        let udpLength = 8 + 16 * plan
        for j in 0..<length {
            let o = start + j
            let byte: UInt8
            switch o {
            case 0: byte = UInt8((1000 + n) >> 8)
            case 1: byte = UInt8((1000 + n) & 0xFF)
            case 2: byte = 0
            case 3: byte = 7
            case 4: byte = UInt8(udpLength >> 8)
            case 5: byte = UInt8(udpLength & 0xFF)
            case 6, 7: byte = 0
            default: byte = ReassemblyHarness.pattern(n, o)
            }
            frame.storeBytes(of: byte, toByteOffset: 34 + j, as: UInt8.self)
        }
        let header = IPv4Header(unchecked: frame + 14)
        frame.storeBytes(of: UInt8(0x45), toByteOffset: 14, as: UInt8.self)
        frame.storeBytes(of: UInt8(0), toByteOffset: 15, as: UInt8.self)
        header.totalLength = UInt16(20 + length)
        header.identification = UInt16(0x4200 + n)
        header.flagsAndFragmentOffset = UInt16(units) | (more ? 0x2000 : 0) | (dontFragment ? 0x4000 : 0)
        frame.storeBytes(of: UInt8(64), toByteOffset: 22, as: UInt8.self)
        header.protocol = .udp
        header.source = fromB ? ReassemblyHarness.hostB : ReassemblyHarness.hostA
        header.destination = IPv4Address(198, 18, 1, 1)
        header.fillChecksum()
        rig.deliver(skb, on: eth0)
    }

    /// What the stack sent (ICMP errors about expired datagrams) is well formed; all freed.
    func drainWire() {
        rig.drain(wire0) { skb in
            precondition(skb.length >= 34, "a transmitted frame shorter than Ethernet + IPv4")
            let header = IPv4Header(unchecked: skb.data + 14)
            precondition(header.isChecksumValid && Int(header.totalLength) <= skb.length - 14,
                         "a transmitted IPv4 header that does not verify")
        }
    }
}
