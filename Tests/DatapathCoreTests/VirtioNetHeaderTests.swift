import Testing
@testable import DatapathCore
import DatapathWire

/// The virtio-net header of AF_PACKET with PACKET_VNET_HDR: what a received one puts in the skb,
/// and the bytes written before a frame to send.
@Suite struct VirtioNetHeaderTests {
    /// Ethernet + IPv4 (DF) + a 20-byte TCP header + `payload` bytes, checksums left as the
    /// sender's device would see them (IP valid, TCP field `tcpCheck`).
    static func tcpFrame(payload: Int, tcpCheck: UInt16 = 0x1234) -> [UInt8] {
        var ip = [UInt8](repeating: 0, count: 20)
        ip.withUnsafeMutableBytes { raw in
            IPv4Repr(source: IPv4Address(198, 18, 1, 2), destination: IPv4Address(198, 18, 2, 2), protocol: .tcp,
                     ttl: 64, payloadLength: 20 + payload, identification: 7, dontFragment: true, dscp: 0)
                .emit(to: raw.baseAddress!)
        }
        var tcp = [UInt8](repeating: 0, count: 20)
        tcp[0] = 0x9C; tcp[1] = 0x40; tcp[2] = 0x13; tcp[3] = 0x89; tcp[12] = 0x50; tcp[13] = 0x18
        tcp[16] = UInt8(tcpCheck >> 8); tcp[17] = UInt8(tcpCheck & 0xFF)
        return frameBytes(payload: ip + tcp + (0..<payload).map { UInt8(truncatingIfNeeded: $0) })
    }

    static func littleEndian(_ values: [UInt16]) -> [UInt8] { values.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }

    @Test func aReceivedHeaderGivesTheSkbItsChecksumStateAndGSOFields() throws {
        let (_, worker) = try makeWorker()
        let skb = worker.cache.skb(Self.tcpFrame(payload: 1000))
        let header: [UInt8] = [1, 1] + Self.littleEndian([54, 1448, 34, 16])
        header.withUnsafeBytes { VirtioNetHeader.receive($0.baseAddress!, into: skb, macOffset: 128) }
        #expect(skb.checksumState == .partial && skb.checksumStart == 128 + 34 && skb.checksumOffset == 16)
        #expect(skb.isGSO && skb.gsoSize == 1448 && skb.gsoType == .tcpv4)

        let verified = worker.cache.skb(Self.tcpFrame(payload: 10))
        ([2, 0] + Self.littleEndian([0, 0, 0, 0]) as [UInt8]).withUnsafeBytes {
            VirtioNetHeader.receive($0.baseAddress!, into: verified, macOffset: 128)
        }
        #expect(verified.checksumState == .unnecessary && !verified.isGSO)
        worker.cache.free(skb)
        worker.cache.free(verified)
    }

    func written(_ skb: SKB, linearLimit: Int = 0) -> (ok: Bool, header: [UInt8]) {
        var header = [UInt8](repeating: 0xEE, count: 10)
        let ok = header.withUnsafeMutableBytes {
            VirtioNetHeader.transmit(skb, header: $0.baseAddress!, linearLimit: linearLimit)
        }
        return (ok, header)
    }

    @Test func anOrdinaryPacketGetsAZeroHeader() throws {
        let (_, worker) = try makeWorker()
        let skb = worker.cache.skb(Self.tcpFrame(payload: 100))
        #expect(written(skb) == (true, [UInt8](repeating: 0, count: 10)))
        worker.cache.free(skb)
    }

    /// Up to the device's linear limit, `hdr_len` is the frame's length: the kernel copies the
    /// whole frame into the skb rather than attaching the ring's page; above it, 0.
    @Test func anOrdinaryPacketUpToTheLinearLimitAsksForAWholeCopy() throws {
        let (_, worker) = try makeWorker()
        let skb = worker.cache.skb(Self.tcpFrame(payload: 100))
        let length = skb.length
        #expect(written(skb, linearLimit: length) == (true, [0, 0] + Self.littleEndian([UInt16(length), 0, 0, 0])))
        #expect(written(skb, linearLimit: .max) == (true, [0, 0] + Self.littleEndian([UInt16(length), 0, 0, 0])))
        #expect(written(skb, linearLimit: length - 1) == (true, [UInt8](repeating: 0, count: 10)))
        #expect(AFPacketDevice.linearTransmitLimit(driver: "veth") == .max)
        #expect(AFPacketDevice.linearTransmitLimit(driver: "mlx5_core") == 256)
        worker.cache.free(skb)
    }

    @Test func aPartialGSOPacketKeepsItsChecksumStartAndTheWholeTCPHeaderIsCounted() throws {
        let (_, worker) = try makeWorker()
        let skb = worker.cache.skb(Self.tcpFrame(payload: 1800))
        skb.gsoSize = 600
        skb.gsoType = .tcpv4
        skb.checksumState = .partial
        skb.checksumStart = skb.data - skb.head.pointee.bufferStart + 34
        skb.checksumOffset = 16
        let before = skb.bytes
        #expect(written(skb) == (true, [1, 1] + Self.littleEndian([54, 600, 34, 16])))
        #expect(skb.bytes == before)  // the partial sum the sender left stays
        worker.cache.free(skb)
    }

    /// An ordinary packet whose checksum was left partial leaves with NEEDS_CSUM and its place,
    /// `hdr_len` covering the field (the kernel wants it in the skb's linear part), the sum the
    /// sender left untouched; a place outside the frame is completed in software instead.
    @Test func aPartialOrdinaryPacketAsksTheKernelToFinishItsChecksum() throws {
        let (_, worker) = try makeWorker()
        let skb = worker.cache.skb(Self.tcpFrame(payload: 100))
        skb.checksumState = .partial
        skb.checksumStart = skb.data - skb.head.pointee.bufferStart + 34
        skb.checksumOffset = 16
        let before = skb.bytes
        #expect(written(skb) == (true, [1, 0] + Self.littleEndian([52, 0, 34, 16])))
        #expect(written(skb, linearLimit: .max) == (true, [1, 0] + Self.littleEndian([UInt16(skb.length), 0, 34, 16])))
        #expect(skb.bytes == before && skb.checksumState == .partial)
        // A start past the frame: the stack completes the checksum itself (pseudo-header sum
        // in the field first, as a partial packet has it) and sends an ordinary header.
        let pseudo = InternetChecksum.fold(InternetChecksum.pseudoHeaderSum(
            source: IPv4Address(198, 18, 1, 2), destination: IPv4Address(198, 18, 2, 2), protocol: .tcp, length: 120))
        let other = worker.cache.skb(Self.tcpFrame(payload: 100, tcpCheck: pseudo))
        other.checksumState = .partial
        other.checksumStart = other.data - other.head.pointee.bufferStart + 4000
        other.checksumOffset = 16
        #expect(written(other) == (true, [UInt8](repeating: 0, count: 10)))
        #expect(other.checksumState == .none)
        #expect(TCPHeader(unchecked: other.data + 34).isChecksumValid(
            source: IPv4Address(198, 18, 1, 2), destination: IPv4Address(198, 18, 2, 2), segmentLength: 120))
        worker.cache.free(skb)
        worker.cache.free(other)
    }

    /// A GRO packet: checksum verified, not partial. The TCP field gets the pseudo-header sum
    /// over the whole super-packet, as the kernel's segmentation expects of a partial checksum.
    @Test func aVerifiedGSOPacketGetsThePseudoHeaderSumWritten() throws {
        let (_, worker) = try makeWorker()
        let skb = worker.cache.skb(Self.tcpFrame(payload: 1800))
        skb.gsoSize = 600
        skb.gsoType = GSOType(rawValue: GSOType.tcpv4.rawValue | GSOType.ecnFlag)
        skb.checksumState = .unnecessary
        #expect(written(skb) == (true, [1, 0x81] + Self.littleEndian([54, 600, 34, 16])))
        let pseudo = InternetChecksum.fold(InternetChecksum.pseudoHeaderSum(
            source: IPv4Address(198, 18, 1, 2), destination: IPv4Address(198, 18, 2, 2), protocol: .tcp, length: 1820))
        #expect(Array(skb.bytes[50..<52]) == [UInt8(pseudo >> 8), UInt8(pseudo & 0xFF)])
        #expect(skb.checksumState == .partial && skb.checksumStart == skb.data - skb.head.pointee.bufferStart + 34)
        worker.cache.free(skb)
    }

    @Test func aGSOPacketThatIsNotIPv4TCPOrUDPCannotBeDescribed() throws {
        let (_, worker) = try makeWorker()
        let skb = worker.cache.skb(frameBytes(etherType: 0x0806, payload: Array(repeating: 0, count: 100)))
        skb.gsoSize = 40
        skb.gsoType = .tcpv4
        #expect(written(skb).ok == false)
        worker.cache.free(skb)
    }
}
