import Testing
@testable import DatapathWire

/// The IGMP views (RFC 2236, RFC 3376), the recording-option view, and IPv4Repr with options.
@Suite struct IGMPTests {
    /// A v2 report for 239.1.2.3 as RFC 2236 §2 lays it out, checksum included.
    @Test func aV2ReportIsWrittenAndReadFieldByField() {
        var message = [UInt8](repeating: 0xEE, count: 8)
        message.withUnsafeMutableBytes { raw in
            IGMPRepr(type: .v2MembershipReport, group: IPv4Address(239, 1, 2, 3)).emit(to: raw.baseAddress!)
        }
        // 0x16 0x00, checksum, group; the checksum makes the whole message sum to 0xFFFF.
        #expect(Array(message[0..<2]) == [0x16, 0x00] && Array(message[4..<8]) == [239, 1, 2, 3])
        #expect(InternetChecksum.fold(InternetChecksum.sum(message, count: 8)) == 0xFFFF)
        withPacket(message) { base, length in
            let header = IGMPHeader(base, length: length)!
            #expect(header.type == .v2MembershipReport && header.maxResponseCode == 0)
            #expect(header.group == IPv4Address(239, 1, 2, 3))
            #expect(header.isChecksumValid(messageLength: length))
            #expect(IGMPRepr(parsing: header) == IGMPRepr(type: .v2MembershipReport, group: IPv4Address(239, 1, 2, 3)))
            header.group = IPv4Address(239, 1, 2, 4)
            #expect(!header.isChecksumValid(messageLength: length))
        }
    }

    @Test func aViewNeedsEightBytes() {
        withPacket([0x11, 100, 0, 0, 0, 0, 0]) { base, length in
            #expect(IGMPHeader(base, length: length) == nil)
        }
    }

    /// A v3 report of two records (RFC 3376 §4.2): type 0x22, the count at 6, 8-byte records.
    @Test func aV3ReportCarriesItsRecords() {
        let report = IGMPv3ReportRepr(records: [(.changeToExclude, IPv4Address(239, 0, 0, 1)),
                                                (.changeToInclude, IPv4Address(239, 0, 0, 2))])
        #expect(report.length == 24)
        var message = [UInt8](repeating: 0xEE, count: report.length)
        message.withUnsafeMutableBytes { report.emit(to: $0.baseAddress!) }
        #expect(message[0] == 0x22 && message[1] == 0 && Array(message[4..<8]) == [0, 0, 0, 2])
        #expect(Array(message[8..<16]) == [4, 0, 0, 0, 239, 0, 0, 1])
        #expect(Array(message[16..<24]) == [3, 0, 0, 0, 239, 0, 0, 2])
        #expect(InternetChecksum.fold(InternetChecksum.sum(message, count: message.count)) == 0xFFFF)
        #expect(report.records.map(\.group) == [IPv4Address(239, 0, 0, 1), IPv4Address(239, 0, 0, 2)])
    }

    /// Options after the fixed header: the header length, total length and checksum cover them.
    @Test func anIPv4HeaderWithOptions() {
        let repr = IPv4Repr(source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(224, 0, 0, 22), protocol: .igmp,
                            ttl: 1, payloadLength: 8)
        var packet = [UInt8](repeating: 0, count: 32)
        let option: [UInt8] = [0x94, 4, 0, 0]
        packet.withUnsafeMutableBytes { raw in
            option.withUnsafeBytes { repr.emit(to: raw.baseAddress!, options: $0) }
        }
        #expect(packet[0] == 0x46 && packet[3] == 32 && Array(packet[20..<24]) == option)
        withPacket(packet) { base, length in
            let header = IPv4Header(base, length: length)!
            #expect(header.isChecksumValid && header.headerLength == 24 && header.totalLength == 32)
            #expect(!header.isVersion4WithoutOptions)
            #expect(IPv4Repr(parsing: header) == repr)
        }
    }

    /// Record route and timestamp fields through `IPv4RecordingOption`.
    @Test func theRecordingOptionView() {
        // A timestamp option: length 12, pointer 5, overflow 2, flag 1 (address and time).
        withPacket([68, 12, 5, 0x21, 0, 0, 0, 0, 0, 0, 0, 0]) { base, _ in
            let option = IPv4RecordingOption(unchecked: base)
            #expect(option.type == .timestamp && option.length == 12 && option.pointer == 5)
            #expect(option.overflow == 2 && option.flag == 1 && option.nextEntry == base + 4)
            option.overflow += 1
            option.pointer = 13
            #expect(bytes(base, count: 4) == [68, 12, 13, 0x31])
        }
    }
}
