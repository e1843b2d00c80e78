import CDatapath
import Testing
import Datapath
import DatapathCore
import DatapathWire

/// ip_forward_options and the option checks of ip_options_compile: a forwarded packet's record
/// route and timestamp options name this router (its outgoing address, eth1's 198.18.2.1).
@Suite struct ForwardOptionsTests {
    let lab: ForwardLab
    init() throws { lab = try ForwardLab() }

    /// Forwards one packet to beyond host B carrying `options`; the forwarded copy.
    func forward(_ options: [UInt8]) throws -> SentIPv4 {
        lab.deliver(ForwardLab.withOptions(ForwardLab.frame(destination: ip("198.19.4.4")), options))
        let sent = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(sent.count == 1)
        let packet = try #require(sent.first)
        #expect(packet.headerChecksumIsValid && packet.ttl == 63)
        return packet
    }

    /// Milliseconds since midnight UT, as RFC 791 timestamps count.
    static func millisecondsToday() -> UInt32 { UInt32(CDatapath_realtime_ns() / 1_000_000 % 86_400_000) }

    static func timestamp(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    @Test func recordRouteGetsTheOutgoingAddressAndItsPointerMoves() throws {
        let packet = try forward([7, 11, 4] + [UInt8](repeating: 0, count: 8) + [0])
        #expect(packet.options == [7, 11, 8, 198, 18, 2, 1, 0, 0, 0, 0, 0])
        // A second router would fill the second slot; a full one is left alone.
        let full: [UInt8] = [7, 7, 8, 198, 18, 9, 9, 1]
        #expect(try forward(full).options == full)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func timestampsRecordTheTimeAndByFlagTheAddress() throws {
        let before = Self.millisecondsToday()
        let timeOnly = try forward([68, 8, 5, 0x00, 0, 0, 0, 0])
        let withAddress = try forward([68, 12, 5, 0x01] + [UInt8](repeating: 0, count: 8))
        let after = Self.millisecondsToday()
        #expect(Array(timeOnly.options[0..<4]) == [68, 8, 9, 0x00])
        #expect(Array(withAddress.options[0..<8]) == [68, 12, 13, 0x01, 198, 18, 2, 1])
        for time in [Self.timestamp(timeOnly.options[4..<8]), Self.timestamp(withAddress.options[8..<12])]
        where before <= after {  // (not across midnight)
            #expect(time >= before && time <= after)
        }
        #expect(lab.poolIsAtBaseline)
    }

    @Test func prespecifiedTimestampsAreOnlyWrittenForOurAddresses() throws {
        let ours = try forward([68, 20, 5, 0x03, 198, 18, 1, 1, 0, 0, 0, 0, 198, 18, 2, 1, 0, 0, 0, 0])
        #expect(Array(ours.options[0..<8]) == [68, 20, 13, 0x03, 198, 18, 1, 1])
        #expect(Self.timestamp(ours.options[8..<12]) != 0)
        #expect(Array(ours.options[12..<20]) == [198, 18, 2, 1, 0, 0, 0, 0])  // one entry per hop
        let foreign: [UInt8] = [68, 12, 5, 0x03, 198, 19, 9, 9, 0, 0, 0, 0]
        #expect(try forward(foreign).options == foreign)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aFullTimestampCountsAnOverflow() throws {
        let packet = try forward([68, 8, 9, 0x20, 0, 0, 0, 1])
        #expect(packet.options == [68, 8, 9, 0x30, 0, 0, 0, 1])
        #expect(lab.poolIsAtBaseline)
    }

    /// A bad pointer, an entry that cannot fit, an unknown flag or an overflow count at its limit:
    /// ICMP parameter problem pointing at the octet, back to host A, nothing forwarded.
    static let malformed: [(options: [UInt8], pointer: UInt8)] = [
        ([7, 7, 3, 0, 0, 0, 0, 1], 22),                      // record route pointer below 4
        ([7, 6, 4, 0, 0, 0, 1, 1], 22),                      // room for less than an address
        ([68, 8, 4, 0x00, 0, 0, 0, 0], 22),                  // timestamp pointer below 5
        ([68, 8, 5, 0x01, 0, 0, 0, 0], 22),                  // address + time does not fit
        ([68, 8, 5, 0x02, 0, 0, 0, 0], 23),                  // flag 2 does not exist
        ([68, 8, 9, 0xF0, 0, 0, 0, 0], 23),                  // full, and the overflow count too
    ]

    @Test(arguments: malformed)
    func malformedRecordRouteAndTimestampGetAParameterProblem(_ bad: (options: [UInt8], pointer: UInt8)) throws {
        let (options, pointer) = bad
        lab.deliver(ForwardLab.withOptions(ForwardLab.frame(destination: ip("198.19.4.4")), options))
        #expect(lab.sent(on: lab.wire1).isEmpty)
        let sent = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(sent.count == 1)
        let error = try #require(sent.first)
        #expect(Array(error.payload.prefix(5)) == [12, 0, error.payload[error.payload.startIndex + 2],
                                                   error.payload[error.payload.startIndex + 3], pointer])
        #expect(lab.drops(.ipHeaderInvalid) == 1)
        #expect(lab.stack.ipv4.statistics[.inHdrErrors] == 1)
        #expect(lab.poolIsAtBaseline)
    }
}
