import DatapathWire
import Testing

@Suite struct EthernetHeaderTests {
    let frame = hex("ff ff ff ff ff ff 02 00 00 00 00 01 08 06") + [UInt8](repeating: 0xAA, count: 28)

    @Test func readsAddressesAndEtherType() throws {
        try withPacket(frame) { base, length in
            let ethernet = try #require(EthernetHeader(base, length: length))
            #expect(ethernet.destination == .broadcast)
            #expect(ethernet.source == MACAddress(2, 0, 0, 0, 0, 1))
            #expect(ethernet.etherType == .arp)
            #expect(ethernet.payload == base + 14)
        }
    }

    @Test func writesAddressesAndEtherTypeInPlace() throws {
        try withPacket(frame) { base, length in
            let ethernet = try #require(EthernetHeader(base, length: length))
            ethernet.destination = MACAddress(2, 0, 0, 0, 0, 9)
            ethernet.source = MACAddress(2, 0, 0, 0, 0, 8)
            ethernet.etherType = .ipv4
            #expect(bytes(base, count: 15) == hex("02 00 00 00 00 09 02 00 00 00 00 08 08 00 aa"))
            ethernet.swapAddresses()
            #expect(ethernet.destination == MACAddress(2, 0, 0, 0, 0, 8) && ethernet.source == MACAddress(2, 0, 0, 0, 0, 9))
        }
    }

    @Test func truncatedFramesHaveNoHeader() {
        for length in 0..<EthernetHeader.length {
            withPacket(Array(frame.prefix(length))) { base, count in
                #expect(EthernetHeader(base, length: count) == nil, "length \(length)")
                #expect(EthernetFrame.parse(base, length: count) == nil, "length \(length)")
            }
        }
        withPacket(Array(frame.prefix(14))) { base, count in
            #expect(EthernetHeader(base, length: count) != nil)
        }
    }
}

@Suite struct VLANTests {
    static let macs = hex("02 00 00 00 00 02 02 00 00 00 00 01")

    @Test func untaggedFrameHasNoVLANAndPayloadAt14() throws {
        try withPacket(Self.macs + hex("08 00 45")) { base, length in
            let parsed = try #require(EthernetFrame.parse(base, length: length))
            #expect(parsed.etherType == .ipv4 && parsed.vlanID == nil && parsed.payloadOffset == 14)
        }
    }

    @Test func singleTagIsSkippedAndItsVIDReported() throws {
        // TCI 0xa064: PCP 5, DEI 0, VID 100.
        try withPacket(Self.macs + hex("81 00 a0 64 08 00 45")) { base, length in
            let parsed = try #require(EthernetFrame.parse(base, length: length))
            #expect(parsed.etherType == .ipv4 && parsed.vlanID == 100 && parsed.payloadOffset == 18)
            let tag = try #require(VLANTag(base + 14, length: length - 14))
            #expect(tag.pcp == 5 && !tag.dei && tag.vid == 100 && tag.etherType == .ipv4)
        }
    }

    @Test func doubleTagIsSkippedReportingBothVIDs() throws {
        try withPacket(Self.macs + hex("88 a8 00 0a 81 00 10 14 08 06 00")) { base, length in
            let parsed = try #require(EthernetFrame.parse(base, length: length))
            #expect(parsed.etherType == .arp && parsed.vlanID == 10 && parsed.payloadOffset == 22)
            let tags = try #require(EthernetFrame.parseTags(base, length: length))
            #expect(tags.outerVLANID == 10 && tags.innerVLANID == 20)
        }
    }

    @Test func thirdTagIsReportedAsTheEtherTypeNotSkipped() throws {
        try withPacket(Self.macs + hex("88 a8 00 01 81 00 00 02 81 00 00 03 08 00")) { base, length in
            let parsed = try #require(EthernetFrame.parse(base, length: length))
            #expect(parsed.etherType == .vlan && parsed.payloadOffset == 22)
        }
    }

    @Test func truncatedTagsFailToParse() {
        let double = Self.macs + hex("88 a8 00 0a 81 00 10 14 08 06")
        for length in [14, 15, 16, 17, 18, 19, 20, 21] {
            withPacket(Array(double.prefix(length))) { base, count in
                #expect(EthernetFrame.parse(base, length: count) == nil, "length \(length)")
            }
        }
        for length in 0..<VLANTag.length {
            withPacket([UInt8](repeating: 0, count: length)) { base, count in
                #expect(VLANTag(base, length: count) == nil)
            }
        }
    }

    @Test func tagFieldsCanBeRewrittenIndependently() throws {
        try withPacket(hex("00 00 08 00")) { base, length in
            let tag = try #require(VLANTag(base, length: length))
            tag.vid = 4095
            tag.pcp = 7
            tag.dei = true
            #expect(bytes(base, count: 4) == hex("ff ff 08 00"))
            tag.vid = 1
            tag.dei = false
            #expect(tag.pcp == 7 && !tag.dei && tag.vid == 1 && tag.tci == 0xE001)
            tag.etherType = .ipv6
            #expect(bytes(base + 2, count: 2) == hex("86 dd"))
        }
    }
}

@Suite struct ARPTests {
    // Who has 192.168.0.199? Tell 192.168.0.1 (02:00:00:00:00:01).
    static let request = hex("00 01 08 00 06 04 00 01 02 00 00 00 00 01 c0 a8 00 01 00 00 00 00 00 00 c0 a8 00 c7")

    @Test func parsesAnEthernetIPv4Request() throws {
        try withPacket(Self.request) { base, length in
            let arp = try #require(ARPPacket(base, length: length))
            #expect(arp.operation == .request)
            #expect(arp.senderHardwareAddress == MACAddress(2, 0, 0, 0, 0, 1))
            #expect(arp.senderProtocolAddress == IPv4Address(192, 168, 0, 1))
            #expect(arp.targetHardwareAddress == .zero)
            #expect(arp.targetProtocolAddress == IPv4Address(192, 168, 0, 199))
            #expect(!arp.isGratuitous)
        }
    }

    @Test func truncatedPacketsAreRejected() {
        for length in 0..<ARPPacket.length {
            withPacket(Array(Self.request.prefix(length))) { base, count in
                #expect(ARPPacket(base, length: count) == nil, "length \(length)")
            }
        }
    }

    @Test func otherHardwareOrProtocolTypesAreRejected() {
        for (offset, value) in [(1, UInt8(6)), (2, 0x86), (4, 8), (5, 16)] {
            var packet = Self.request
            packet[offset] = value
            withPacket(packet) { base, count in
                #expect(ARPPacket(base, length: count) == nil, "byte \(offset) = \(value)")
            }
        }
    }

    @Test func replyRoundTripsThroughTheRepr() throws {
        let reply = ARPRepr(operation: .reply,
                            senderHardwareAddress: MACAddress(2, 0, 0, 0, 0, 2), senderProtocolAddress: IPv4Address(192, 168, 0, 199),
                            targetHardwareAddress: MACAddress(2, 0, 0, 0, 0, 1), targetProtocolAddress: IPv4Address(192, 168, 0, 1))
        try withPacket([UInt8](repeating: 0xEE, count: ARPPacket.length)) { base, length in
            reply.emit(to: base)
            #expect(bytes(base, count: 8) == hex("00 01 08 00 06 04 00 02"))
            let parsed = ARPRepr(parsing: try #require(ARPPacket(base, length: length)))
            #expect(parsed == reply)
        }
    }

    @Test func unknownOperationsAreRepresentable() throws {
        var packet = Self.request
        packet[7] = 3  // RARP request
        try withPacket(packet) { base, length in
            let arp = try #require(ARPPacket(base, length: length))
            #expect(arp.operation == ARPOperation(rawValue: 3))
            #expect(arp.operation.description == "3")
            arp.operation = .reply
            #expect(bytes(base + 6, count: 2) == [0, 2])
        }
    }
}
