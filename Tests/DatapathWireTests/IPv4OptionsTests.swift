import DatapathWire
import Testing

/// A summary of one option, comparable in `#expect`.
enum SeenOption: Equatable {
    case end, nop, option(type: UInt8, offset: Int, value: [UInt8]), malformed(Int)
}

@Suite struct IPv4OptionsTests {
    /// A valid 20-byte header followed by `options` (a multiple of 4 bytes), IHL set to match.
    func header(options: [UInt8]) -> [UInt8] {
        var bytes = ipv4HeaderBytes(payloadLength: 0)
        bytes[0] = 0x40 | UInt8((20 + options.count) / 4)
        return bytes + options
    }

    func walk(_ options: [UInt8]) -> [SeenOption] {
        withPacket(header(options: options)) { base, length in
            guard let ip = IPv4Header(base, length: length) else { return [] }
            var seen: [SeenOption] = []
            for option in ip.options {
                switch option {
                case .endOfList: seen.append(.end)
                case .noOperation: seen.append(.nop)
                case .option(let type, let offset, let value, let valueLength):
                    seen.append(.option(type: type.rawValue, offset: offset, value: bytes(value, count: valueLength)))
                case .malformed(let offset): seen.append(.malformed(offset))
                }
            }
            return seen
        }
    }

    @Test func walksNopsAndATypeLengthValueOption() {
        #expect(walk(hex("01 01 94 04 00 00 00 00")) == [.nop, .nop, .option(type: 148, offset: 22, value: [0, 0]), .end])
    }

    @Test func stopsAtEndOfList() {
        #expect(walk(hex("01 00 07 03")) == [.nop, .end])
    }

    @Test func optionEndingExactlyAtTheHeaderEndIsValid() {
        #expect(walk(hex("07 07 04 c0 a8 00 01 01")) == [.option(type: 7, offset: 20, value: hex("04 c0 a8 00 01")), .nop])
        #expect(walk(hex("07 08 05 00 00 00 00 00")) == [.option(type: 7, offset: 20, value: hex("05 00 00 00 00 00"))])
    }

    @Test func lengthZeroOrOneIsMalformed() {
        #expect(walk(hex("07 00 00 00")) == [.malformed(20)])
        #expect(walk(hex("01 07 01 00")) == [.nop, .malformed(21)])
    }

    @Test func lengthPastTheHeaderEndIsMalformed() {
        #expect(walk(hex("07 09 00 00 00 00 00 00")) == [.malformed(20)])
        #expect(walk(hex("01 01 44 ff")) == [.nop, .nop, .malformed(22)])
    }

    @Test func missingLengthByteIsMalformed() {
        #expect(walk(hex("01 01 01 83")) == [.nop, .nop, .nop, .malformed(23)])
    }

    @Test func headerWithoutOptionsHasNone() {
        withPacket(ipv4HeaderBytes()) { base, length in
            var options = IPv4Header(base, length: length)!.options
            #expect(options.next() == nil)
        }
    }

    @Test func optionBytesCoverTheOptionsArea() throws {
        try withPacket(header(options: hex("94 04 00 00"))) { base, length in
            let ip = try #require(IPv4Header(base, length: length))
            #expect(ip.optionBytes.baseAddress == base + 20 && ip.optionBytes.count == 4)
            #expect(ip.payload == base + 24)
        }
    }

    @Test func copiedFlagIsBitSevenOfTheType() {
        #expect(IPv4OptionType.security.isCopied && IPv4OptionType.lsrr.isCopied && IPv4OptionType.ssrr.isCopied)
        #expect(IPv4OptionType.routerAlert.isCopied)
        #expect(!IPv4OptionType.recordRoute.isCopied && !IPv4OptionType.timestamp.isCopied)
        #expect(!IPv4OptionType.end.isCopied && !IPv4OptionType.nop.isCopied)
        #expect(IPv4OptionType.timestamp.optionClass == 2 && IPv4OptionType.timestamp.number == 4)
        #expect(IPv4OptionType.lsrr.rawValue == 131 && IPv4OptionType.ssrr.rawValue == 137)
    }
}
