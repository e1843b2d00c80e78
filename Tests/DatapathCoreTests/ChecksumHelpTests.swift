import Testing
@testable import DatapathCore
import DatapathWire

/// skb_checksum_help: completing a CHECKSUM_PARTIAL frame as a NIC would.
@Suite struct ChecksumHelpTests {
    /// An Ethernet/IPv4/UDP-or-TCP frame whose L4 checksum field holds only the pseudo-header
    /// sum, as the kernel leaves it for the device; also returns the fully correct frame.
    func partialFrame(protocol proto: IPProtocol, payload: Int) -> (partial: [UInt8], complete: [UInt8]) {
        let l4Header = proto == .tcp ? 20 : 8
        let l4Length = l4Header + payload
        var frame = [UInt8](repeating: 0, count: 14 + 20 + l4Length)
        frame.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            let eth = EthernetHeader(base, length: raw.count)!
            eth.destination = MACAddress(2, 0, 0, 0, 0, 2)
            eth.source = MACAddress(2, 0, 0, 0, 0, 1)
            eth.etherType = .ipv4
            let source = IPv4Address(198, 18, 0, 1), destination = IPv4Address(198, 18, 0, 2)
            IPv4Repr(source: source, destination: destination, protocol: proto, ttl: 64, payloadLength: l4Length).emit(to: base + 14)
            let l4 = base + 34
            l4.storeBytes(of: UInt16(40000).bigEndian, as: UInt16.self)
            l4.storeBytes(of: UInt16(9).bigEndian, toByteOffset: 2, as: UInt16.self)
            if proto == .udp {
                l4.storeBytes(of: UInt16(l4Length).bigEndian, toByteOffset: 4, as: UInt16.self)
            } else {
                l4.storeBytes(of: UInt8(5 << 4), toByteOffset: 12, as: UInt8.self)
            }
            for i in 0..<payload { l4.storeBytes(of: UInt8(truncatingIfNeeded: i * 13), toByteOffset: l4Header + i, as: UInt8.self) }
            let pseudo = InternetChecksum.fold(InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: proto, length: l4Length))
            l4.storeBytes(of: pseudo.bigEndian, toByteOffset: proto == .udp ? 6 : 16, as: UInt16.self)
        }
        var complete = frame
        complete.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            let l4 = base + 34
            let offset = proto == .udp ? 6 : 16
            l4.storeBytes(of: UInt16(0), toByteOffset: offset, as: UInt16.self)
            let sum = InternetChecksum.sum(l4, count: l4Length, initial: InternetChecksum.pseudoHeaderSum(
                source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 0, 2), protocol: proto, length: l4Length))
            var value = ~InternetChecksum.fold(sum)
            if proto == .udp && value == 0 { value = 0xFFFF }
            l4.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
        }
        return (frame, complete)
    }

    @Test(arguments: [IPProtocol.udp, .tcp], [0, 1, 17, 1000])
    func partialChecksumsAreCompletedExactly(proto: IPProtocol, payload: Int) throws {
        let (pool, worker) = try makeWorker()
        let (partial, complete) = partialFrame(protocol: proto, payload: payload)
        let skb = worker.cache.skb(partial)
        skb.checksumState = .partial
        #expect(skbChecksumHelp(skb))
        #expect(skb.bytes == complete)
        #expect(skb.checksumState == ChecksumState.none)
        worker.cache.free(skb)
        #expect(pool.inUseCount == 0)
    }

    @Test func framesItCannotCompleteAreLeftAlone() throws {
        let (pool, worker) = try makeWorker()
        var (partial, _) = partialFrame(protocol: .udp, payload: 10)
        partial[14 + 9] = 47  // GRE: not TCP or UDP
        let gre = worker.cache.skb(partial)
        #expect(!skbChecksumHelp(gre))
        #expect(gre.bytes == partial)
        let truncated = worker.cache.skb(Array(partialFrame(protocol: .tcp, payload: 100).partial.prefix(60)))
        #expect(!skbChecksumHelp(truncated))
        let arp = worker.cache.skb(frameBytes(etherType: 0x0806))
        #expect(!skbChecksumHelp(arp))
        for skb in [gre, truncated, arp] { worker.cache.free(skb) }
        #expect(pool.inUseCount == 0)
    }
}
