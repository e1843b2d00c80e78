import DatapathWire
import Testing

@Suite struct ESPTests {
    @Test func headerReadsSPIAndSequence() throws {
        try withPacket(hex("00 00 10 01 00 00 00 2a ff")) { base, length in
            let esp = try #require(ESPHeader(base, length: length))
            #expect(esp.spi == 0x1001 && esp.sequenceNumber == 42 && esp.payload == base + 8)
            esp.sequenceNumber = 0x0102_0304
            #expect(bytes(base + 4, count: 4) == [1, 2, 3, 4])
        }
    }

    @Test func truncatedBuffersHaveNoHeader() {
        for length in 0..<ESPHeader.length {
            withPacket([UInt8](repeating: 0, count: length)) { base, count in
                #expect(ESPHeader(base, length: count) == nil)
            }
        }
    }

    @Test func trailerIsReadFromTheEnd() throws {
        // 5 data bytes, default padding 1 2 3, pad length 3, next header 4 (IPv4), 16-byte ICV.
        let region = [UInt8](repeating: 0xDD, count: 5) + [1, 2, 3, 3, 4] + [UInt8](repeating: 0x1C, count: 16)
        try withPacket(region) { base, length in
            let trailer = try #require(ESPTrailer(base, length: length, icvLength: 16))
            #expect(trailer.padLength == 3 && trailer.nextHeader == .ipip && trailer.payloadLength == 5)
            #expect(trailer.icvLength == 16)
            #expect(trailer.hasDefaultPadding(base))
        }
        let stripped = [UInt8](repeating: 0xDD, count: 5) + [1, 2, 9, 3, 6]
        try withPacket(stripped) { base, length in
            let trailer = try #require(ESPTrailer(base, length: length, icvLength: 0))
            #expect(trailer.nextHeader == .tcp && !trailer.hasDefaultPadding(base))
        }
    }

    @Test func trailerThatDoesNotFitIsRejected() {
        // Too short for the ICV and the two trailer octets.
        for length in 0..<18 {
            withPacket([UInt8](repeating: 0, count: length)) { base, count in
                #expect(ESPTrailer(base, length: count, icvLength: 16) == nil, "length \(length)")
            }
        }
        // Pad length claims more padding than precedes it.
        withPacket([0, 0, 3, 4]) { base, count in
            #expect(ESPTrailer(base, length: count, icvLength: 0) == nil)
        }
        withPacket([0, 0, 2, 4]) { base, count in
            #expect(ESPTrailer(base, length: count, icvLength: 0)?.payloadLength == 0)
        }
        withPacket([0, 0]) { base, count in
            #expect(ESPTrailer(base, length: count, icvLength: -1) == nil)
        }
    }
}
