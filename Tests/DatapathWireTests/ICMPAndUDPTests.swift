import DatapathWire
import Testing

@Suite struct ICMPHeaderTests {
    // Echo request, id 0x1234, seq 1, data "abcd"; 0x2104 computed independently.
    static let echo = hex("08 00 21 04 12 34 00 01") + Array("abcd".utf8)

    @Test func readsAnEchoRequest() throws {
        try withPacket(Self.echo) { base, length in
            let icmp = try #require(ICMPHeader(base, length: length))
            #expect(icmp.type == .echoRequest && icmp.code == 0 && icmp.checksum == 0x2104)
            #expect(icmp.identifier == 0x1234 && icmp.sequenceNumber == 1 && icmp.restOfHeader == 0x1234_0001)
            #expect(icmp.isChecksumValid(messageLength: length))
            #expect(icmp.computeChecksum(messageLength: length) == 0x2104)
            #expect(!icmp.type.isError)
        }
    }

    @Test func turningARequestIntoAReplyKeepsTheChecksumValid() throws {
        try withPacket(Self.echo) { base, length in
            let icmp = try #require(ICMPHeader(base, length: length))
            let typeCode: UInt16 = UInt16(icmp.type.rawValue) << 8 | UInt16(icmp.code.rawValue)
            icmp.type = .echoReply
            icmp.checksum = InternetChecksum.update(icmp.checksum, old: typeCode, new: 0)
            #expect(icmp.isChecksumValid(messageLength: length))
            #expect(icmp.checksum == icmp.computeChecksum(messageLength: length))
        }
    }

    @Test func truncatedBuffersHaveNoHeader() {
        for length in 0..<ICMPHeader.length {
            withPacket(Array(Self.echo.prefix(length))) { base, count in
                #expect(ICMPHeader(base, length: count) == nil, "length \(length)")
            }
        }
    }

    @Test func fragmentationNeededCarriesTheNextHopMTU() throws {
        try withPacket([UInt8](repeating: 0, count: 8) + ipv4HeaderBytes() + [UInt8](repeating: 0, count: 8)) { base, length in
            let icmp = try #require(ICMPHeader(base, length: length))
            icmp.type = .destinationUnreachable
            icmp.code = ICMPCode.DestinationUnreachable.fragmentationNeeded
            icmp.nextHopMTU = 1400
            icmp.fillChecksum(messageLength: length)
            #expect(bytes(base, count: 2) == [3, 4] && bytes(base + 4, count: 4) == hex("00 00 05 78"))
            #expect(icmp.isChecksumValid(messageLength: length))
            #expect(icmp.type.isError)
            #expect(IPv4Header(icmp.payload, length: length - 8)?.source == IPv4Address(192, 168, 0, 1))
        }
    }

    @Test func errorTypesAreThreeFourFiveElevenTwelve() {
        let errors = (0...255).filter { ICMPType(rawValue: UInt8($0)).isError }
        #expect(errors == [3, 4, 5, 11, 12])
        #expect(ICMPType.timeExceeded.rawValue == 11 && ICMPType.parameterProblem.rawValue == 12 && ICMPType.redirect.rawValue == 5)
        #expect(ICMPCode.TimeExceeded.ttl == 0 && ICMPCode.TimeExceeded.reassembly == 1)
        #expect(ICMPCode.DestinationUnreachable.net == 0 && ICMPCode.DestinationUnreachable.host == 1)
        #expect(ICMPCode.DestinationUnreachable.protocol == 2 && ICMPCode.DestinationUnreachable.port == 3)
    }

    @Test func parameterProblemPointerAndRedirectGatewayUseTheRestOfHeader() throws {
        try withPacket([UInt8](repeating: 0, count: 8)) { base, length in
            let icmp = try #require(ICMPHeader(base, length: length))
            icmp.pointer = 20
            #expect(bytes(base + 4, count: 4) == [20, 0, 0, 0])
            icmp.gatewayAddress = IPv4Address(10, 0, 0, 254)
            #expect(bytes(base + 4, count: 4) == [10, 0, 0, 254])
        }
    }
}

@Suite struct UDPHeaderTests {
    static let source = IPv4Address(192, 168, 0, 1)
    static let destination = IPv4Address(192, 168, 0, 199)
    static let datagram = hex("04 d2 00 35 00 0d 34 e2") + Array("hello".utf8)

    @Test func readsAValidDatagram() throws {
        try withPacket(Self.datagram) { base, length in
            let udp = try #require(UDPHeader(base, length: length))
            #expect(udp.sourcePort == 1234 && udp.destinationPort == 53 && udp.length == 13 && udp.checksum == 0x34E2)
            #expect(udp.isLengthValid(bufferLength: length))
            #expect(udp.isChecksumValid(source: Self.source, destination: Self.destination))
            #expect(!udp.isChecksumValid(source: Self.source, destination: IPv4Address(192, 168, 0, 198)))
            #expect(bytes(udp.payload, count: 5) == Array("hello".utf8))
        }
    }

    @Test func truncatedBuffersHaveNoHeader() {
        for length in 0..<UDPHeader.length {
            withPacket(Array(Self.datagram.prefix(length))) { base, count in
                #expect(UDPHeader(base, length: count) == nil, "length \(length)")
            }
        }
    }

    @Test func lengthFieldBeyondTheBufferOrBelowTheHeaderIsInvalid() throws {
        for (claimed, valid) in [(14, false), (0xFFFF, false), (7, false), (0, false), (8, true), (13, true)] {
            var datagram = Self.datagram
            datagram[4] = UInt8(claimed >> 8)
            datagram[5] = UInt8(claimed & 0xFF)
            try withPacket(datagram) { base, length in
                let udp = try #require(UDPHeader(base, length: length))
                #expect(udp.isLengthValid(bufferLength: length) == valid, "length field \(claimed)")
                #expect((UDPRepr(parsing: udp, bufferLength: length) != nil) == valid)
            }
        }
    }

    @Test func zeroChecksumMeansNoneWasComputed() throws {
        var datagram = Self.datagram
        datagram[6] = 0
        datagram[7] = 0
        try withPacket(datagram) { base, length in
            let udp = try #require(UDPHeader(base, length: length))
            #expect(udp.isChecksumValid(source: Self.source, destination: Self.destination))
        }
    }

    @Test func emitComputesTheChecksumOverThePayloadInPlace() throws {
        let repr = UDPRepr(sourcePort: 1234, destinationPort: 53, payloadLength: 5)
        try withPacket([UInt8](repeating: 0xEE, count: 8) + Array("hello".utf8)) { base, length in
            repr.emit(to: base, source: Self.source, destination: Self.destination)
            #expect(bytes(base, count: length) == Self.datagram)
            let udp = try #require(UDPHeader(base, length: length))
            #expect(UDPRepr(parsing: udp, bufferLength: length) == repr)
        }
    }

    @Test func setFieldsWritesTheFourFieldsInOneStore() {
        withPacket([UInt8](repeating: 0xEE, count: 10), misalignment: 3) { base, length in
            let udp = UDPHeader(unchecked: base)
            udp.setFields(sourcePort: 0x1234, destinationPort: 53, length: 10, checksum: 0xBEEF)
            #expect(bytes(base, count: length) == [0x12, 0x34, 0x00, 0x35, 0x00, 0x0A, 0xBE, 0xEF, 0xEE, 0xEE])
            #expect(udp.sourcePort == 0x1234 && udp.destinationPort == 53 && udp.length == 10 && udp.checksum == 0xBEEF)
        }
    }

    @Test func computedZeroIsSentAsAllOnes() throws {
        // Pick the payload word so that the datagram's checksum comes out as zero: then RFC 768
        // requires 0xFFFF on the wire, because 0 would mean "no checksum".
        let repr = UDPRepr(sourcePort: 1, destinationPort: 2, payloadLength: 2)
        try withPacket([UInt8](repeating: 0, count: 10)) { base, length in
            repr.emit(to: base, source: Self.source, destination: Self.destination)
            let udp = try #require(UDPHeader(base, length: length))
            // Adding the complement of the current checksum to the payload makes the sum 0xFFFF
            // with the checksum field zero, i.e. a computed checksum of 0.
            let word = udp.checksum
            base.storeBytes(of: word.bigEndian, toByteOffset: 8, as: UInt16.self)
            repr.emit(to: base, source: Self.source, destination: Self.destination)
            #expect(udp.checksum == 0xFFFF)
            #expect(udp.isChecksumValid(source: Self.source, destination: Self.destination))
            #expect(udp.computeChecksum(source: Self.source, destination: Self.destination) == 0xFFFF)
        }
    }

    @Test func randomDatagramsRoundTripWithValidChecksums() throws {
        var rng = SeededGenerator(seed: 768)
        for _ in 0..<500 {
            let payload = rng.bytes(Int.random(in: 0...1472, using: &rng))
            let repr = UDPRepr(sourcePort: UInt16.random(in: 0...0xFFFF, using: &rng),
                               destinationPort: UInt16.random(in: 0...0xFFFF, using: &rng), payloadLength: payload.count)
            let source = IPv4Address(hostOrder: rng.next32())
            let destination = IPv4Address(hostOrder: rng.next32())
            try withPacket([UInt8](repeating: 0, count: 8) + payload) { base, length in
                repr.emit(to: base, source: source, destination: destination)
                let udp = try #require(UDPHeader(base, length: length))
                #expect(udp.checksum != 0)
                #expect(udp.isChecksumValid(source: source, destination: destination))
                #expect(UDPRepr(parsing: udp, bufferLength: length) == repr)
            }
        }
    }
}
