import DatapathWire
import Testing

@Suite struct IPv4HeaderTests {
    static let udpHeader = hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7")

    @Test func readsEveryFieldOfAValidHeader() throws {
        try withPacket(Self.udpHeader + [UInt8](repeating: 0, count: 95)) { base, length in
            let ip = try #require(IPv4Header(base, length: length))
            #expect(ip.version == 4 && ip.headerLength == 20)
            #expect(ip.dscp == 0 && ip.ecn == 0)
            #expect(ip.totalLength == 0x73 && ip.isTotalLengthValid(bufferLength: length))
            #expect(ip.identification == 0)
            #expect(ip.dontFragment && !ip.moreFragments && ip.fragmentOffset == 0 && !ip.isFragment)
            #expect(ip.ttl == 64 && ip.protocol == .udp && ip.checksum == 0xB861)
            #expect(ip.source == IPv4Address(192, 168, 0, 1) && ip.destination == IPv4Address(192, 168, 0, 199))
            #expect(ip.isChecksumValid)
            #expect(ip.payload == base + 20 && ip.optionBytes.count == 0)
        }
    }

    @Test func truncatedBuffersHaveNoHeader() {
        for length in 0..<IPv4Header.minimumLength {
            withPacket(Array(Self.udpHeader.prefix(length))) { base, count in
                #expect(IPv4Header(base, length: count) == nil, "length \(length)")
            }
        }
    }

    @Test func wrongVersionOrShortIHLIsRejected() {
        for first: UInt8 in [0x65, 0x05, 0x44, 0x40, 0x41] {
            var header = Self.udpHeader
            header[0] = first
            withPacket(header) { base, count in
                #expect(IPv4Header(base, length: count) == nil, "first byte \(first)")
            }
        }
    }

    @Test func ihlBeyondTheBufferIsRejected() {
        var header = Self.udpHeader + [1, 1, 1, 1]  // 24 bytes of buffer
        header[0] = 0x46
        withPacket(header) { base, count in #expect(IPv4Header(base, length: count) != nil) }
        for ihl: UInt8 in 7...15 {
            header[0] = 0x40 | ihl
            withPacket(header) { base, count in
                #expect(IPv4Header(base, length: count) == nil, "IHL \(ihl)")
            }
        }
    }

    @Test func totalLengthMustCoverTheHeaderAndFitTheBuffer() throws {
        try withPacket(Self.udpHeader + [UInt8](repeating: 0, count: 100)) { base, length in
            let ip = try #require(IPv4Header(base, length: length))
            ip.totalLength = 0x73
            #expect(ip.isTotalLengthValid(bufferLength: 0x73))
            #expect(ip.isTotalLengthValid(bufferLength: length))  // Ethernet padding after is fine
            #expect(!ip.isTotalLengthValid(bufferLength: 0x72))  // claims more than there is
            ip.totalLength = 19
            #expect(!ip.isTotalLengthValid(bufferLength: length))  // shorter than its header
            ip.totalLength = 20
            #expect(ip.isTotalLengthValid(bufferLength: length))
            ip.totalLength = 0xFFFF
            #expect(!ip.isTotalLengthValid(bufferLength: length))
        }
    }

    @Test func flagsAndFragmentOffsetAreIndependent() throws {
        try withPacket(Self.udpHeader) { base, length in
            let ip = try #require(IPv4Header(base, length: length))
            ip.dontFragment = false
            ip.moreFragments = true
            ip.fragmentOffset = 185
            #expect(bytes(base + 6, count: 2) == hex("20 b9"))
            #expect(ip.isFragment && ip.fragmentOffsetBytes == 1480 && !ip.dontFragment)
            ip.moreFragments = false
            #expect(ip.isFragment && ip.fragmentOffset == 185)
            ip.fragmentOffset = 0
            #expect(!ip.isFragment)
            ip.fragmentOffset = 0xFFFF  // clipped to 13 bits, flags untouched
            #expect(ip.fragmentOffset == 0x1FFF && !ip.moreFragments && !ip.dontFragment)
        }
    }

    @Test func dscpAndECNShareTheirByte() throws {
        try withPacket(Self.udpHeader) { base, length in
            let ip = try #require(IPv4Header(base, length: length))
            ip.dscp = 46  // EF
            ip.ecn = 3
            #expect(base.load(fromByteOffset: 1, as: UInt8.self) == 0xBB)
            ip.dscp = 0
            #expect(ip.ecn == 3)
        }
    }

    @Test func ttlDecrementKeepsChecksumValid() throws {
        try withPacket(Self.udpHeader) { base, length in
            let ip = try #require(IPv4Header(base, length: length))
            ip.decrementTTL()
            #expect(ip.ttl == 63)
            #expect(ip.isChecksumValid)
            #expect(ip.checksum == ip.computeChecksum())
        }
    }

    /// `fillChecksum`'s 20-byte shortcut (sum in native order with the field masked) stores
    /// what the general computation gives, whatever the field held, at any alignment; headers
    /// with options take the general one.
    @Test func fillingTheChecksumAgreesWithComputingItForRandomHeaders() {
        var rng = SeededGenerator(seed: 7)
        var wrong = 0
        for n in 0..<5000 {
            let words = n % 5 == 0 ? 5 + Int.random(in: 1...10, using: &rng) : 5
            var header = rng.bytes(words * 4)
            header[0] = 0x40 | UInt8(words)
            withPacket(header, misalignment: Int.random(in: 0..<4, using: &rng)) { base, length in
                let ip = IPv4Header(unchecked: base)
                let expected = ip.computeChecksum()
                ip.fillChecksum()
                if ip.checksum != expected || !ip.isChecksumValid { wrong += 1 }
            }
        }
        #expect(wrong == 0)
    }

    /// `emit` writes whole words (its checksum from the field values), and with
    /// `checksum: false` leaves the field 0 for `ip_local_out`'s fill: both give the same
    /// header as the general computation, for random field values at any alignment.
    @Test func emitWithAndWithoutItsChecksumAgreesWithTheFill() {
        var rng = SeededGenerator(seed: 1071)
        var wrong = 0
        for n in 0..<5000 {
            let repr = IPv4Repr(source: IPv4Address(hostOrder: UInt32.random(in: 0...UInt32.max, using: &rng)),
                                destination: IPv4Address(hostOrder: UInt32.random(in: 0...UInt32.max, using: &rng)),
                                protocol: IPProtocol(rawValue: UInt8.random(in: 0...255, using: &rng)),
                                ttl: UInt8.random(in: 0...255, using: &rng),
                                payloadLength: Int.random(in: 0...65515, using: &rng),
                                identification: UInt16.random(in: 0...UInt16.max, using: &rng),
                                dontFragment: Bool.random(using: &rng), dscp: UInt8.random(in: 0...63, using: &rng),
                                ecn: UInt8.random(in: 0...3, using: &rng))
            withPacket(rng.bytes(20), misalignment: n % 4) { base, _ in
                repr.emit(to: base)
                let ip = IPv4Header(unchecked: base)
                let whole = bytes(base, count: 20)
                if !ip.isChecksumValid || ip.checksum != ip.computeChecksum() || IPv4Repr(parsing: ip) != repr { wrong += 1 }
                repr.emit(to: base, checksum: false)
                if ip.checksum != 0 { wrong += 1 }
                ip.fillChecksum()
                if bytes(base, count: 20) != whole { wrong += 1 }
            }
        }
        #expect(wrong == 0)
    }

    @Test func ttlDecrementMatchesFullRecomputeForThousandsOfRandomHeaders() {
        var rng = SeededGenerator(seed: 1812)
        var decrements = 0
        var mismatches = 0
        for _ in 0..<3000 {
            var header = rng.bytes(20)
            header[0] = 0x45
            header[8] = UInt8.random(in: 1...255, using: &rng)
            withPacket(header, misalignment: Int.random(in: 0..<4, using: &rng)) { base, length in
                let ip = IPv4Header(base, length: length)!
                ip.fillChecksum()
                var ttl = ip.ttl
                while ttl > 0 {
                    ip.decrementTTL()
                    ttl -= 1
                    decrements += 1
                    if ip.ttl != ttl || ip.checksum != ip.computeChecksum() || !ip.isChecksumValid { mismatches += 1 }
                }
            }
        }
        #expect(decrements > 300_000)
        #expect(mismatches == 0)
    }

    /// Every checksum value, valid or not, including the two that fold differently (0xFEFF and
    /// 0xFFFF), gets exactly the bits of Linux's `ip_decrease_ttl`, and the protocol byte stays.
    @Test func ttlDecrementMatchesLinuxForEveryChecksumValue() throws {
        var mismatches: [UInt16] = []
        for value in 0...0xFFFF {
            var header = Self.udpHeader
            header[8] = UInt8(2 + value % 254)
            header[10] = UInt8(value >> 8)
            header[11] = UInt8(value & 0xFF)
            try withPacket(header, misalignment: value % 4) { base, length in
                let ip = try #require(IPv4Header(base, length: length))
                let ttl = ip.ttl
                ip.decrementTTL(from: ttl)
                let sum = UInt32(value) + 0x0100
                let expected = UInt16(truncatingIfNeeded: sum + (sum >= 0xFFFF ? 1 : 0))
                if ip.checksum != expected || ip.ttl != ttl - 1 || ip.protocol.rawValue != header[9] {
                    mismatches.append(UInt16(value))
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(8))")
    }

    @Test func ttlZeroIsNotWrapped() throws {
        var header = Self.udpHeader
        header[8] = 0
        try withPacket(header) { base, length in
            let ip = try #require(IPv4Header(base, length: length))
            ip.fillChecksum()
            ip.decrementTTL()
            #expect(ip.ttl == 0 && ip.isChecksumValid)
        }
    }

    @Test func corruptedHeadersFailTheChecksum() {
        for index in 0..<20 {
            var header = Self.udpHeader
            header[index] ^= 0x10
            withPacket(header) { base, length in
                guard let ip = IPv4Header(base, length: length) else { return }  // version/IHL byte
                #expect(!ip.isChecksumValid, "byte \(index)")
            }
        }
    }

    @Test func headersWithOptionsTakeTheGeneralChecksumPath() throws {
        // IHL 6 with a router alert option (94 04 00 00).
        var header = Self.udpHeader
        header[0] = 0x46
        header[3] = 0x77
        header += hex("94 04 00 00")
        try withPacket(header) { base, length in
            let ip = try #require(IPv4Header(base, length: length))
            #expect(!ip.isChecksumValid)
            ip.fillChecksum()
            #expect(ip.isChecksumValid)
            #expect(InternetChecksum.fold(InternetChecksum.sum(base, count: 24)) == 0xFFFF)
            ip.decrementTTL()
            #expect(ip.isChecksumValid)
        }
    }

    @Test func settersWriteNetworkOrder() throws {
        try withPacket([UInt8](repeating: 0, count: 20)) { base, _ in
            let ip = IPv4Header(unchecked: base)
            ip.headerLength = 20
            ip.totalLength = 0x1234
            ip.identification = 0xABCD
            ip.ttl = 9
            ip.protocol = .tcp
            ip.source = IPv4Address(1, 2, 3, 4)
            ip.destination = IPv4Address(5, 6, 7, 8)
            ip.fillChecksum()
            #expect(bytes(base, count: 10) == hex("45 00 12 34 ab cd 00 00 09 06"))
            #expect(bytes(base + 12, count: 8) == hex("01 02 03 04 05 06 07 08"))
            let view = try #require(IPv4Header(base, length: 20))
            #expect(view.isChecksumValid)
        }
    }
}

@Suite struct IPv4ReprTests {
    @Test func emitWritesAValidHeaderThatParsesBackEqual() throws {
        let repr = IPv4Repr(source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 19, 0, 7),
                            protocol: .tcp, ttl: 33, payloadLength: 1234, identification: 0x4242,
                            dontFragment: false, dscp: 46, ecn: 2)
        try withPacket([UInt8](repeating: 0xFF, count: 20)) { base, length in
            repr.emit(to: base)
            let ip = try #require(IPv4Header(base, length: length))
            #expect(ip.isChecksumValid)
            #expect(ip.checksum == ip.computeChecksum())
            #expect(ip.totalLength == 1254 && !ip.isFragment)
            #expect(IPv4Repr(parsing: ip) == repr)
        }
    }

    @Test func emitMatchesTheKnownHeader() {
        let repr = IPv4Repr(source: IPv4Address(192, 168, 0, 1), destination: IPv4Address(192, 168, 0, 199),
                            protocol: .udp, ttl: 64, payloadLength: 0x73 - 20, identification: 0,
                            dontFragment: true, dscp: 0)
        withPacket([UInt8](repeating: 0, count: 20)) { base, _ in
            repr.emit(to: base)
            #expect(bytes(base, count: 20) == IPv4HeaderTests.udpHeader)
        }
    }

    @Test func randomReprsRoundTrip() throws {
        var rng = SeededGenerator(seed: 791)
        for _ in 0..<2000 {
            let repr = IPv4Repr(source: IPv4Address(hostOrder: rng.next32()), destination: IPv4Address(hostOrder: rng.next32()),
                                protocol: IPProtocol(rawValue: UInt8.random(in: 0...255, using: &rng)),
                                ttl: UInt8.random(in: 0...255, using: &rng), payloadLength: Int.random(in: 0...65515, using: &rng),
                                identification: UInt16.random(in: 0...0xFFFF, using: &rng), dontFragment: Bool.random(using: &rng),
                                dscp: UInt8.random(in: 0...63, using: &rng), ecn: UInt8.random(in: 0...3, using: &rng))
            try withPacket([UInt8](repeating: 0, count: 20)) { base, length in
                repr.emit(to: base)
                let ip = try #require(IPv4Header(base, length: length))
                #expect(ip.isChecksumValid)
                #expect(IPv4Repr(parsing: ip) == repr)
            }
        }
    }

    @Test func parsingFailsWhenTotalLengthIsShorterThanTheHeader() throws {
        var header = IPv4HeaderTests.udpHeader
        header[2] = 0
        header[3] = 19
        try withPacket(header) { base, length in
            let ip = try #require(IPv4Header(base, length: length))
            #expect(IPv4Repr(parsing: ip) == nil)
        }
    }

    @Test func theTwentyByteFastPathAgreesWithTheGenericSum() throws {
        var rng = SeededGenerator(seed: 2026)
        var checked = 0, valid = 0
        for round in 0..<20_000 {
            var header = (0..<20).map { _ in UInt8.random(in: 0...255, using: &rng) }
            header[0] = 0x45
            if round % 2 == 0 {
                // Make it valid, sometimes with extreme words (all-ones sums, zero checksums).
                if round % 10 == 0 { for i in 1..<20 { header[i] = 0xFF } }
                header[10] = 0
                header[11] = 0
                let sum = InternetChecksum.fold(InternetChecksum.sum(header, count: 20))
                header[10] = UInt8(~sum >> 8)
                header[11] = UInt8(~sum & 0xFF)
            }
            try withPacket(header, misalignment: round % 4) { base, length in
                let ip = try #require(IPv4Header(base, length: length))
                let generic = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawPointer(base), count: 20)) == 0xFFFF
                #expect(ip.isChecksumValid == generic)
                checked += 1
                if generic { valid += 1 }
            }
        }
        #expect(checked == 20_000)
        #expect(valid >= 10_000)
    }

    /// The 20-byte fast path of `computeChecksum` agrees with RFC 1071 over the header with its
    /// field zeroed, for random headers (and any stored field).
    @Test func theTwentyByteChecksumAgreesWithTheGeneralSum() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        var mismatches = 0
        for _ in 0..<2000 {
            var bytes = (0..<20).map { _ in next() }
            bytes[0] = 0x45
            var zeroed = bytes
            zeroed[10] = 0
            zeroed[11] = 0
            let expected = zeroed.withUnsafeBytes { InternetChecksum.checksum($0.baseAddress!, count: 20) }
            withPacket(bytes) { base, _ in
                if IPv4Header(unchecked: base).computeChecksum() != expected { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }
}
