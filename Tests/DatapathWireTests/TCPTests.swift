import DatapathWire
import Testing

@Suite struct TCPHeaderTests {
    static let source = IPv4Address(10, 0, 0, 1)
    static let destination = IPv4Address(10, 0, 0, 2)
    // 40000 → 80 SYN, seq 0x01020304, window 65535, no options; checksum 0xfb49 computed
    // independently over the RFC 9293 pseudo-header.
    static let syn = hex("9c 40 00 50 01 02 03 04 00 00 00 00 50 02 ff ff fb 49 00 00")

    @Test func readsEveryFieldOfASyn() throws {
        try withPacket(Self.syn) { base, length in
            let tcp = try #require(TCPHeader(base, length: length))
            #expect(tcp.sourcePort == 40000 && tcp.destinationPort == 80)
            #expect(tcp.sequenceNumber == 0x0102_0304 && tcp.acknowledgmentNumber == 0)
            #expect(tcp.dataOffset == 20 && tcp.flags == .syn && tcp.window == 65535)
            #expect(tcp.checksum == 0xFB49 && tcp.urgentPointer == 0)
            #expect(tcp.isChecksumValid(source: Self.source, destination: Self.destination, segmentLength: length))
            #expect(tcp.computeChecksum(source: Self.source, destination: Self.destination, segmentLength: length) == 0xFB49)
            #expect(tcp.optionBytes.count == 0 && tcp.payload == base + 20)
        }
    }

    @Test func truncatedBuffersHaveNoHeader() {
        for length in 0..<TCPHeader.minimumLength {
            withPacket(Array(Self.syn.prefix(length))) { base, count in
                #expect(TCPHeader(base, length: count) == nil, "length \(length)")
            }
        }
    }

    @Test func dataOffsetBelowTwentyOrBeyondTheBufferIsRejected() {
        var segment = Self.syn + [UInt8](repeating: 1, count: 8)  // 28 bytes
        for offset: UInt8 in 0...15 {
            segment[12] = offset << 4
            let valid = offset >= 5 && offset <= 7
            withPacket(segment) { base, count in
                #expect((TCPHeader(base, length: count) != nil) == valid, "data offset \(offset)")
            }
        }
    }

    @Test func flagsKeepTheDataOffsetAndReadECNBits() throws {
        try withPacket(Self.syn) { base, length in
            let tcp = try #require(TCPHeader(base, length: length))
            tcp.flags = [.syn, .ack, .ece, .cwr]
            #expect(bytes(base + 12, count: 2) == hex("50 d2"))
            #expect(tcp.flags.contains(.ack) && !tcp.flags.contains(.fin) && tcp.dataOffset == 20)
            tcp.flags = [.fin, .rst, .psh, .urg]
            #expect(tcp.flags.rawValue == 0x2D)
            base.storeBytes(of: 0x53, toByteOffset: 12, as: UInt8.self)  // AE and two reserved bits
            #expect(tcp.flags.contains(.ae) && tcp.flags.intersection(.known) == [.fin, .rst, .psh, .urg])
            tcp.flags.insert(.ack)
            #expect(bytes(base + 12, count: 2) == hex("53 3d") && tcp.dataOffset == 20)
        }
    }

    @Test func settersWriteNetworkOrderAndChecksumVerifies() throws {
        try withPacket([UInt8](repeating: 0, count: 24)) { base, _ in
            let tcp = TCPHeader(unchecked: base)
            tcp.sourcePort = 443
            tcp.destinationPort = 51000
            tcp.sequenceNumber = 0xDEAD_BEEF
            tcp.acknowledgmentNumber = 0x0BAD_F00D
            tcp.dataOffset = 20
            tcp.flags = [.ack, .psh]
            tcp.window = 512
            tcp.urgentPointer = 7
            tcp.fillChecksum(source: Self.source, destination: Self.destination, segmentLength: 24)
            #expect(bytes(base, count: 16) == hex("01 bb c7 38 de ad be ef 0b ad f0 0d 50 18 02 00"))
            let view = try #require(TCPHeader(base, length: 24))
            #expect(view.isChecksumValid(source: Self.source, destination: Self.destination, segmentLength: 24))
            #expect(!view.isChecksumValid(source: Self.destination, destination: Self.destination, segmentLength: 24))
        }
    }
}

@Suite struct TCPOptionTests {
    func options(_ bytes: [UInt8]) -> [TCPOption]? {
        var segment = TCPHeaderTests.syn + bytes
        segment[12] = UInt8((20 + bytes.count) / 4) << 4
        return withPacket(segment) { base, length in
            TCPHeader(base, length: length).map { Array($0.options) }
        }
    }

    @Test func parsesATypicalSynOptionSet() {
        // MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
        let parsed = options(hex("02 04 05 b4 04 02 08 0a 00 00 00 01 00 00 00 00 01 03 03 07"))
        #expect(parsed == [.maximumSegmentSize(1460), .sackPermitted, .timestamps(value: 1, echo: 0), .noOperation, .windowScale(7)])
    }

    @Test func parsesSACKBlocksWithoutAllocatingAnArray() {
        let parsed = options(hex("01 01 05 12 00 00 00 10 00 00 00 20 00 00 00 30 00 00 00 40"))
        let blocks = TCPSACKBlocks([TCPSACKBlock(left: 0x10, right: 0x20), TCPSACKBlock(left: 0x30, right: 0x40)])
        #expect(parsed == [.noOperation, .noOperation, .sack(blocks)])
        #expect(blocks.count == 2 && blocks[1].right == 0x40)
    }

    @Test func endOfListStopsAndUnknownKindsAreSkipped() {
        #expect(options(hex("1e 04 ab cd 00 02 04 05")) == [.unknown(kind: 30, length: 4), .endOfList])
    }

    @Test func lengthZeroOneOrPastTheEndIsMalformed() {
        #expect(options(hex("02 00 05 b4")) == [.malformed])
        #expect(options(hex("01 1e 01 00")) == [.noOperation, .malformed])
        #expect(options(hex("01 01 1e 03")) == [.noOperation, .noOperation, .malformed])
        #expect(options(hex("08 0a 00 00 00 01 00 00")) == [.malformed])
        #expect(options(hex("01 01 01 02")) == [.noOperation, .noOperation, .noOperation, .malformed])  // no length byte
    }

    @Test func knownKindsWithTheWrongLengthAreMalformed() {
        #expect(options(hex("02 03 05 00")) == [.malformed])
        #expect(options(hex("03 04 07 00")) == [.malformed])
        #expect(options(hex("04 03 00 00")) == [.malformed])
        #expect(options(hex("05 06 00 00 00 00 00 00")) == [.malformed])
        #expect(options(hex("05 0b 00 00 00 00 00 00 00 00 00 00")) == [.malformed])
        #expect(options(hex("08 08 00 00 00 00 00 00")) == [.malformed])
    }

    @Test func sackCapacityIsFour() {
        var blocks = TCPSACKBlocks()
        for index in 0..<4 {
            let added = blocks.append(TCPSACKBlock(left: UInt32(index), right: UInt32(index + 1)))
            #expect(added)
        }
        let fifth = blocks.append(TCPSACKBlock(left: 9, right: 9))
        #expect(!fifth)
        #expect(blocks.count == 4 && blocks.map(\.left) == [0, 1, 2, 3])
        #expect(TCPSACKBlocks() == TCPSACKBlocks([]) && blocks != TCPSACKBlocks())
    }
}

@Suite struct TCPReprTests {
    static let source = IPv4Address(192, 0, 2, 1)
    static let destination = IPv4Address(198, 51, 100, 2)

    func roundTrip(_ repr: TCPRepr, payload: [UInt8] = []) throws -> (TCPRepr?, [UInt8]) {
        try withPacket([UInt8](repeating: 0xEE, count: repr.headerLength) + payload) { base, length in
            let written = repr.emit(to: base, source: Self.source, destination: Self.destination)
            #expect(written == repr.headerLength && written % 4 == 0)
            let tcp = try #require(TCPHeader(base, length: length))
            #expect(tcp.dataOffset == written)
            #expect(tcp.isChecksumValid(source: Self.source, destination: Self.destination, segmentLength: length))
            return (TCPRepr(parsing: tcp, segmentLength: length), bytes(base, count: written))
        }
    }

    @Test func bareSegmentRoundTrips() throws {
        let repr = TCPRepr(sourcePort: 80, destinationPort: 40000, sequenceNumber: 7, acknowledgmentNumber: 9,
                           flags: [.ack, .fin], window: 1000, payloadLength: 3)
        let (parsed, header) = try roundTrip(repr, payload: [1, 2, 3])
        #expect(parsed == repr && header.count == 20)
    }

    @Test func synWithEveryOptionRoundTripsPaddedToFourBytes() throws {
        let repr = TCPRepr(sourcePort: 40000, destinationPort: 443, sequenceNumber: 0xFFFF_FFF0, flags: .syn,
                           window: 64240, maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                           timestamps: TCPTimestamps(value: 123_456, echo: 0))
        #expect(repr.headerLength == 20 + 20)  // 4 + 3 + 2 + 10 = 19, padded to 20
        let (parsed, header) = try roundTrip(repr)
        #expect(parsed == repr)
        #expect(Array(header.suffix(20)) == hex("02 04 05 b4 03 03 07 04 02 08 0a 00 01 e2 40 00 00 00 00 00"))
    }

    @Test func sackBlocksRoundTripAndAreTrimmedToFit() throws {
        let four = TCPSACKBlocks((0..<4).map { TCPSACKBlock(left: UInt32($0) * 100, right: UInt32($0) * 100 + 50) })
        var repr = TCPRepr(sourcePort: 1, destinationPort: 2, sequenceNumber: 3, acknowledgmentNumber: 4,
                           flags: .ack, window: 5, sackBlocks: four)
        #expect(repr.emittedSACKCount == 4 && repr.headerLength == 56)
        #expect(try roundTrip(repr).0 == repr)
        // With timestamps (10 bytes) only three blocks fit in 40 bytes (RFC 2018 §3).
        repr.timestamps = TCPTimestamps(value: 1, echo: 2)
        #expect(repr.emittedSACKCount == 3 && repr.headerLength == 56)
        var trimmed = repr
        trimmed.sackBlocks = TCPSACKBlocks(Array(four.prefix(3)))
        #expect(try roundTrip(repr).0 == trimmed)
    }

    @Test func parsingFailsOnMalformedOptionsOrAShortSegment() throws {
        var segment = TCPHeaderTests.syn + hex("02 00 05 b4")
        segment[12] = 0x60
        try withPacket(segment) { base, length in
            let tcp = try #require(TCPHeader(base, length: length))
            #expect(TCPRepr(parsing: tcp, segmentLength: length) == nil)
        }
        try withPacket(TCPHeaderTests.syn) { base, length in
            let tcp = try #require(TCPHeader(base, length: length))
            #expect(TCPRepr(parsing: tcp, segmentLength: 19) == nil)
            #expect(TCPRepr(parsing: tcp, segmentLength: 20)?.payloadLength == 0)
        }
    }

    @Test func randomReprsRoundTrip() throws {
        var rng = SeededGenerator(seed: 9293)
        for _ in 0..<500 {
            var blocks = TCPSACKBlocks()
            for _ in 0..<Int.random(in: 0...2, using: &rng) { blocks.append(TCPSACKBlock(left: rng.next32(), right: rng.next32())) }
            let repr = TCPRepr(sourcePort: UInt16.random(in: 0...0xFFFF, using: &rng), destinationPort: UInt16.random(in: 0...0xFFFF, using: &rng),
                               sequenceNumber: rng.next32(), acknowledgmentNumber: rng.next32(),
                               flags: TCPFlags(rawValue: UInt16.random(in: 0...0xFF, using: &rng)), window: UInt16.random(in: 0...0xFFFF, using: &rng),
                               urgentPointer: UInt16.random(in: 0...0xFFFF, using: &rng),
                               maximumSegmentSize: Bool.random(using: &rng) ? UInt16.random(in: 0...0xFFFF, using: &rng) : nil,
                               windowScale: Bool.random(using: &rng) ? UInt8.random(in: 0...14, using: &rng) : nil,
                               sackPermitted: Bool.random(using: &rng), sackBlocks: blocks,
                               timestamps: Bool.random(using: &rng) ? TCPTimestamps(value: rng.next32(), echo: rng.next32()) : nil,
                               payloadLength: Int.random(in: 0...99, using: &rng))
            let payload = rng.bytes(repr.payloadLength)
            #expect(try roundTrip(repr, payload: payload).0 == repr)
        }
    }
}
