import Benchmark
import BenchmarkSupport
import DatapathWire

// One scaled iteration is one packet, so `throughput` reads directly as packets/s.
let benchmarks: @Sendable () -> Void = {
    usePacketBenchmarkDefaults()

    Benchmark("Ethernet+IPv4+UDP parse") { benchmark in
        let frames = Frames(count: 32, length: 64)
        defer { frames.deallocate() }
        benchmark.startMeasurement()
        var sum: UInt32 = 0
        for i in benchmark.scaledIterations {
            let frame = frames.frame(i & 31)
            guard let parsed = EthernetFrame.parse(frame, length: 64), parsed.etherType == .ipv4,
                  let ip = IPv4Header(frame + parsed.payloadOffset, length: 64 - parsed.payloadOffset),
                  ip.protocol == .udp,
                  let udp = UDPHeader(frame + (parsed.payloadOffset + ip.headerLength),
                                      length: 64 - parsed.payloadOffset - ip.headerLength)
            else { continue }
            sum &+= ip.destination.hostOrder &+ UInt32(udp.destinationPort)
        }
        blackHole(sum)
    }

    Benchmark("IPv4 header checksum verify (20 bytes)") { benchmark in
        let frames = Frames(count: 32, length: 64)
        defer { frames.deallocate() }
        benchmark.startMeasurement()
        var valid = 0
        for i in benchmark.scaledIterations {
            let ip = IPv4Header(frames.frame(i & 31) + 14, length: 50)!
            if ip.isChecksumValid { valid &+= 1 }
        }
        blackHole(valid)
    }

    Benchmark("Internet checksum, 1500 bytes (packets/s x 12000 = bit/s)") { benchmark in
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1500 * 8, alignment: 64)
        defer { buffer.deallocate() }
        for i in 0..<(1500 * 8) { buffer.storeBytes(of: UInt8(truncatingIfNeeded: i &* 7), toByteOffset: i, as: UInt8.self) }
        benchmark.startMeasurement()
        var acc: UInt16 = 0
        for i in benchmark.scaledIterations {
            acc ^= InternetChecksum.checksum(buffer + (i & 7) * 1500, count: 1500)
        }
        blackHole(acc)
    }
}

/// A few valid Ethernet/IPv4/UDP frames in one block of memory.
struct Frames {
    let base: UnsafeMutableRawPointer
    let length: Int

    init(count: Int, length: Int) {
        self.length = length
        base = .allocate(byteCount: count * length, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: count * length)
        for i in 0..<count {
            let frame = base + i * length
            let ethernet = EthernetHeader(frame, length: length)!
            ethernet.destination = MACAddress(2, 0, 0, 0, 0, 2)
            ethernet.source = MACAddress(2, 0, 0, 0, 0, 1)
            ethernet.etherType = .ipv4
            IPv4Repr(source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 1, UInt8(i)),
                     protocol: .udp, ttl: 64, payloadLength: length - 34, identification: 0,
                     dontFragment: true, dscp: 0).emit(to: frame + 14)
            UDPRepr(sourcePort: 1024, destinationPort: 9, payloadLength: length - 42)
                .emit(to: frame + 34, source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 1, UInt8(i)))
        }
    }

    func frame(_ i: Int) -> UnsafeMutableRawPointer { base + i * length }
    func deallocate() { base.deallocate() }
}
