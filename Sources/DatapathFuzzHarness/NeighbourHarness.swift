import Datapath
import DatapathCore
import DatapathWire

/// The fuzz harness for the neighbour layer (issue #13: "the neighbour state machine fed ARP
/// sequences"): a router whose eth0 (198.18.1.1/24) has eight possible neighbours,
/// 198.18.1.10–17, each answering from one of four MACs, in a table of at most four entries;
/// eth1 has host B (static). The input is a sequence of 4-byte records:
///
///     [what: 1][a: 1][b: 1][c: 1] …
///
/// `what` bits 0–1: 0 an ARP frame from a neighbour (bit 2: reply, else request; bit 3:
/// broadcast, else to our MAC; sender 198.18.1.(10 + a % 8) at MAC …01:(b % 4); target ours
/// when c is even, else 198.18.1.(10 + c % 8)); 1 a packet from host B to 198.18.1.(10 + a % 8),
/// forwarded out of eth0 (it waits for resolution); 2 a clock step of a × 50 ms, with the
/// neighbour timers run; 3 an ARP frame with fields taken from b and c (hardware and protocol
/// lengths, operation) — malformed most of the time.
///
/// Invariants, trapping when broken: every IPv4 frame out of eth0 goes to a MAC that neighbour
/// really sent from (never a stale or invented one), every ARP frame out is well formed with
/// our own sender address; the table never holds more than its bound; every drop has a reason;
/// once every entry has timed out, every pool buffer is back.
public final class NeighbourHarness {
    let rig: HarnessRig
    var stack: Stack { rig.stack }
    var worker: Worker { rig.worker }
    let eth0: MemoryDevice, wire0: MemoryDevice
    let eth1: MemoryDevice, wire1: MemoryDevice
    static let maximumEntries = 4
    static let routerMAC = MACAddress(2, 0, 0, 0, 0, 1)
    /// Per neighbour (198.18.1.10 + n), the MACs it has sent ARP from (bit m: …01:m).
    var used = [UInt8](repeating: 0, count: 8)
    /// IPv4 frames sent out of eth0 so far (the seeds must make some).
    public private(set) var forwarded = 0

    public init() throws {
        var parameters = NeighbourParameters()
        parameters.maximumEntries = NeighbourHarness.maximumEntries
        rig = try HarnessRig { Stack(workers: 1, clock: $0, neighbourParameters: parameters) }
        (eth0, wire0) = MemoryDevice.pair("eth0", NeighbourHarness.routerMAC, "wire0", MACAddress(2, 0, 0, 0, 1, 0),
                                          ringSize: 4096)
        (eth1, wire1) = MemoryDevice.pair("eth1", MACAddress(2, 0, 0, 0, 0, 0x11), "wire1", MACAddress(2, 0, 0, 0, 0, 0xB2),
                                          ringSize: 4096)
        try stack.addDevice(eth0)
        try stack.addDevice(eth1)
        try stack.apply("""
            addr add 198.18.1.1/24 dev eth0
            addr add 198.18.2.1/24 dev eth1
            neigh add 198.18.2.2 lladdr 02:00:00:00:00:b2 dev eth1
            """)
        rig.markBaseline()
    }

    static func neighbourMAC(_ m: Int) -> MACAddress { MACAddress(2, 0, 0, 0, 1, UInt8(m)) }

    /// Runs one input; traps when an invariant fails.
    public func run(_ input: UnsafeRawBufferPointer) {
        used = [UInt8](repeating: 0, count: 8)
        var offset = 0
        while offset + 4 <= input.count {
            let what = input[offset], a = Int(input[offset + 1]), b = Int(input[offset + 2]), c = Int(input[offset + 3])
            offset += 4
            switch what & 3 {
            case 0:
                let n = a % 8, m = b % 4
                used[n] |= 1 << m
                let target = c % 2 == 0 ? IPv4Address(198, 18, 1, 1) : IPv4Address(198, 18, 1, UInt8(10 + c % 8))
                arp(operation: what & 4 != 0 ? 2 : 1, broadcast: what & 8 != 0, senderMAC: NeighbourHarness.neighbourMAC(m),
                    sender: IPv4Address(198, 18, 1, UInt8(10 + n)), target: target)
            case 1:
                packet(to: IPv4Address(198, 18, 1, UInt8(10 + a % 8)))
            case 2:
                rig.clock.advance(by: .milliseconds(Int(a) * 50))
                _ = stack.neighbours.runTimers(worker: worker)
            default:
                used[a % 8] |= 1   // valid now and then (lengths 6 and 4): it may teach MAC …01:00
                arp(operation: UInt16(c & 3), broadcast: true, senderMAC: NeighbourHarness.neighbourMAC(0),
                    sender: IPv4Address(198, 18, 1, UInt8(10 + a % 8)), target: IPv4Address(198, 18, 1, 1),
                    hardwareLength: UInt8(b & 0x0F), protocolLength: UInt8(b >> 4))
            }
            check()
        }
        // Every entry times out (stale time, failed probes) and gives back what it held.
        for _ in 0..<40 {
            rig.clock.advance(by: .seconds(10))
            _ = stack.neighbours.runTimers(worker: worker)
            check()
        }
        // The next input starts from an empty table (stale entries would outlive this one).
        for entry in stack.neighbours.snapshot() where entry.device == "eth0" {
            try? stack.removeNeighbour(entry.address, device: "eth0")
        }
        _ = stack.neighbours.runTimers(worker: worker)
        check()
        rig.checkDropsAndPool()
    }

    func arp(operation: UInt16, broadcast: Bool, senderMAC: MACAddress, sender: IPv4Address, target: IPv4Address,
             hardwareLength: UInt8 = 6, protocolLength: UInt8 = 4) {
        guard let skb = worker.cache.allocate() else { return }
        skb.reserve(64)
        guard let frame = skb.put(60) else { worker.cache.free(skb); return }
        frame.initializeMemory(as: UInt8.self, repeating: 0, count: 60)
        (broadcast ? MACAddress.broadcast : NeighbourHarness.routerMAC).store(to: frame)
        senderMAC.store(to: frame + 6)
        frame.storeBytes(of: UInt16(0x0806).bigEndian, toByteOffset: 12, as: UInt16.self)
        frame.storeBytes(of: UInt16(1).bigEndian, toByteOffset: 14, as: UInt16.self)
        frame.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 16, as: UInt16.self)
        frame.storeBytes(of: hardwareLength, toByteOffset: 18, as: UInt8.self)
        frame.storeBytes(of: protocolLength, toByteOffset: 19, as: UInt8.self)
        frame.storeBytes(of: operation.bigEndian, toByteOffset: 20, as: UInt16.self)
        senderMAC.store(to: frame + 22)
        frame.storeBytes(of: sender.hostOrder.bigEndian, toByteOffset: 28, as: UInt32.self)
        (operation == 2 ? NeighbourHarness.routerMAC : MACAddress(0, 0, 0, 0, 0, 0)).store(to: frame + 32)
        frame.storeBytes(of: target.hostOrder.bigEndian, toByteOffset: 38, as: UInt32.self)
        deliver(skb, on: eth0)
    }

    /// A UDP packet from host B (on eth1) to `destination`, which the router forwards out of eth0.
    func packet(to destination: IPv4Address) {
        guard let skb = worker.cache.allocate() else { return }
        skb.reserve(64)
        guard let frame = skb.put(60) else { worker.cache.free(skb); return }
        frame.initializeMemory(as: UInt8.self, repeating: 0, count: 60)
        eth1.macAddress.store(to: frame)
        MACAddress(2, 0, 0, 0, 0, 0xB2).store(to: frame + 6)
        frame.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 12, as: UInt16.self)
        IPv4Repr(source: IPv4Address(198, 18, 2, 2), destination: destination, protocol: .udp, ttl: 64,
                 payloadLength: 26, identification: 1, dontFragment: true, dscp: 0).emit(to: frame + 14)
        deliver(skb, on: eth1)
    }

    func deliver(_ skb: SKB, on device: MemoryDevice) { rig.deliver(skb, on: device) }

    /// The table's bound, and what left eth0 and eth1 (ICMP errors to host B), frame by frame.
    func check() {
        let entries = stack.neighbours.snapshot().filter { $0.device == "eth0" }
        precondition(entries.count <= NeighbourHarness.maximumEntries, "the neighbour table past its bound")
        rig.drain(wire0) { skb in
            precondition(skb.length >= 42, "a frame out of eth0 shorter than ARP")
            let type = UInt16(bigEndian: skb.data.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
            if type == 0x0806 {
                precondition(skb.data.loadUnaligned(fromByteOffset: 14, as: UInt32.self) == UInt32(0x0001_0800).bigEndian
                             && skb.data.loadUnaligned(fromByteOffset: 18, as: UInt16.self) == UInt16(0x0604).bigEndian,
                             "an ARP frame out with a bad header")
                precondition(MACAddress(loadingFrom: skb.data + 22) == NeighbourHarness.routerMAC
                             && UInt32(bigEndian: skb.data.loadUnaligned(fromByteOffset: 28, as: UInt32.self)) == 0xC612_0101,
                             "an ARP frame out that is not from us")
            } else {
                precondition(type == 0x0800, "a frame out of eth0 that is neither ARP nor IPv4")
                let destination = UInt32(bigEndian: skb.data.loadUnaligned(fromByteOffset: 30, as: UInt32.self))
                let n = Int(destination) - 0xC612_010A
                precondition((0..<8).contains(n), "an IPv4 frame out of eth0 to an address the harness never used")
                let mac = MACAddress(loadingFrom: skb.data)
                let sentFrom = (0..<4).contains { used[n] & (1 << $0) != 0 && NeighbourHarness.neighbourMAC($0) == mac }
                precondition(sentFrom, "an IPv4 frame to 198.18.1.\(10 + n) sent to \(mac), which it never used")
                forwarded += 1
            }
        }
        rig.drain(wire1)
    }
}
