import Testing
import Datapath
import DatapathCore
import DatapathWire

/// ICMP: echo replies, each error's exact bytes, the never-send rules and rate limiting on the
/// virtual clock.
@Suite struct ICMPTests {
    /// The exact error message the router should send host A about `offending` (an Ethernet
    /// frame): IPv4 header from `source`, then type, code, `info`, the quoted header + 8 bytes.
    func expectedError(about offending: [UInt8], type: UInt8, code: UInt8, info: UInt32 = 0,
                       source: IPv4Address = ForwardLab.routerA, identification: (UInt8, UInt8)) -> [UInt8] {
        let quoted = Array(offending[14..<(14 + 20 + 8)])
        var icmp: [UInt8] = [type, code, 0, 0, UInt8(info >> 24), UInt8(info >> 16 & 0xFF), UInt8(info >> 8 & 0xFF),
                             UInt8(info & 0xFF)] + quoted
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(icmp, count: icmp.count))
        icmp[2] = UInt8(sum >> 8)
        icmp[3] = UInt8(sum & 0xFF)
        let total = 20 + icmp.count
        var header: [UInt8] = [0x45, (offending[15] & 0x1E) | 0xC0, UInt8(total >> 8), UInt8(total & 0xFF),
                               identification.0, identification.1, 0, 0, 64, 1, 0, 0]
        header += source.bytes + ForwardLab.hostA.bytes
        let headerSum = ~InternetChecksum.fold(InternetChecksum.sum(header, count: 20))
        header[10] = UInt8(headerSum >> 8)
        header[11] = UInt8(headerSum & 0xFF)
        return Array(ForwardLab.hostAMAC.bytes + mac(0x01).bytes + [0x08, 0x00]) + header + icmp
    }

    /// The ICMP message answering echo request frame `request`: type 0, its checksum redone.
    static func echoReplyMessage(for request: [UInt8]) -> [UInt8] {
        var expected = Array(request[34...])
        expected[0] = 0
        expected[2] = 0
        expected[3] = 0
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(expected, count: expected.count))
        expected[2] = UInt8(sum >> 8)
        expected[3] = UInt8(sum & 0xFF)
        return expected
    }

    @Test func timeExceededQuotesTheHeaderAndEightBytes() throws {
        let lab = try ForwardLab()
        let offending = ForwardLab.frame(destination: ip("198.19.3.3"), ttl: 1, tos: 0x2C)
        lab.deliver(offending)
        let sent = try #require(lab.sent(on: lab.wire0).first)
        #expect(sent == expectedError(about: offending, type: 11, code: 0, identification: (sent[18], sent[19])))
        #expect(lab.drops(.ipTTLExpired) == 1)
        #expect(lab.stack.ipv4.icmp.statistics[.outTimeExcds] == 1)
        #expect(lab.stack.ipv4.statistics[.inHdrErrors] == 1)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func fragmentationNeededCarriesTheNextHopMTU() throws {
        let lab = try ForwardLab()
        try lab.stack.setMTU("eth1", 1280)
        let offending = ForwardLab.frame(destination: ip("198.19.3.3"), payload: Array(repeating: 1, count: 1400))
        lab.deliver(offending)
        let sent = try #require(lab.sent(on: lab.wire0).first)
        #expect(sent == expectedError(about: offending, type: 3, code: 4, info: 1280, identification: (sent[18], sent[19])))
        #expect(lab.drops(.fragmentationNeeded) == 1)
        #expect(lab.stack.ipv4.statistics[.fragFails] == 1)
        #expect(lab.sent(on: lab.wire1).isEmpty)
    }

    @Test func unreachablesAndAnUnknownProtocolHaveTheirCodes() throws {
        let lab = try ForwardLab()
        let noRoute = ForwardLab.frame(destination: ip("198.20.1.1"))
        let unknown = ForwardLab.frame(destination: ForwardLab.routerA, protocol: IPProtocol(rawValue: 253))
        // Errors about different flows: the one about a packet to us leaves first when the fast
        // path delivered that packet (`fastLocalDelivery`), after the other when it did not.
        for fastLocal in [true, false] {
            lab.stack.ipv4.settings.fastLocalDelivery = fastLocal
            lab.deliver([noRoute, unknown])
            let sent = lab.sent(on: lab.wire0)
            #expect(sent.count == 2)
            let net = try #require(sent.first { $0.count > 35 && $0[35] == 0 })
            let proto = try #require(sent.first { $0.count > 35 && $0[35] == 2 })
            #expect(net == expectedError(about: noRoute, type: 3, code: 0, identification: (net[18], net[19])))
            // About a packet to us, the error comes from the address it was sent to.
            #expect(proto == expectedError(about: unknown, type: 3, code: 2, identification: (proto[18], proto[19])))
            #expect((sent[0] == proto) == fastLocal)
        }
        lab.stack.ipv4.settings.fastLocalDelivery = true
        #expect(lab.drops(.ipNoProtocol) == 2)
        #expect(lab.stack.ipv4.statistics[.inUnknownProtos] == 2)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func malformedOptionsGetAParameterProblemPointingAtThem() throws {
        let lab = try ForwardLab()
        var frame = ForwardLab.frame(destination: ip("198.19.3.3"))
        // A 4-byte option area: NOP, then a timestamp option claiming 12 bytes.
        frame.insert(contentsOf: [1, 68, 12, 5], at: 34)
        frame[14] = 0x46
        let total = frame.count - 14
        frame[16] = UInt8(total >> 8); frame[17] = UInt8(total & 0xFF)
        frame[24] = 0; frame[25] = 0
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(Array(frame[14..<38]), count: 24))
        frame[24] = UInt8(sum >> 8); frame[25] = UInt8(sum & 0xFF)
        lab.deliver(frame)
        let sent = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(sent.count == 1)
        // Type 12, code 0, pointer 21 (the timestamp option's type octet: 20 + the NOP).
        #expect(sent.first.map { [$0.payload.first!, $0.payload.dropFirst().first!, $0.payload.dropFirst(4).first!] }
                == [12, 0, 21])
        #expect(lab.drops(.ipHeaderInvalid) == 1)
        #expect(lab.sent(on: lab.wire1).isEmpty)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func anEchoRequestGetsItsReplyFromTheAddressItWasSentTo() throws {
        let lab = try ForwardLab()
        let request = ForwardLab.echoRequest(to: ForwardLab.routerB, identifier: 0x0102, sequence: 9)
        lab.deliver(request)
        let reply = try #require(lab.sent(on: lab.wire0).first.map(SentIPv4.init))
        #expect(reply.destinationMAC == ForwardLab.hostAMAC)
        #expect(reply.source == ForwardLab.routerB && reply.destination == ForwardLab.hostA)
        #expect(reply.headerChecksumIsValid && reply.ttl == 64 && reply.protocolNumber == 1)
        #expect(Array(reply.payload) == Self.echoReplyMessage(for: request))
        #expect(lab.stack.ipv4.icmp.statistics[.inEchos] == 1 && lab.stack.ipv4.icmp.statistics[.outEchoReps] == 1)
        #expect(lab.stack.ipv4.statistics[.inDelivers] == 1 && lab.stack.ipv4.statistics[.outRequests] == 1)
        #expect(lab.poolIsAtBaseline)
    }

    /// ip_options_echo: record route and timestamp come back with the replier recorded twice
    /// (receiving, sending); a router alert does not come back.
    @Test func anEchoReplyCarriesBackRecordRouteAndTimestampWithThisHostInThem() throws {
        let lab = try ForwardLab()
        let recordRoute: [UInt8] = [7, 15, 8, 198, 18, 1, 2] + [UInt8](repeating: 0, count: 8)  // A recorded itself
        let timestamp: [UInt8] = [68, 12, 5, 0x01] + [UInt8](repeating: 0, count: 8)             // room for one
        let routerAlert: [UInt8] = [148, 4, 0, 0]
        let options = recordRoute + [1] + timestamp + routerAlert      // 15 + 1 + 12 + 4 = 32
        lab.deliver(ForwardLab.withOptions(ForwardLab.echoRequest(to: ForwardLab.routerA), options))
        let reply = try #require(lab.sent(on: lab.wire0).first.map(SentIPv4.init))
        #expect(reply.headerChecksumIsValid && reply.headerLength == 20 + 28)
        #expect(Array(reply.options[0..<15]) == [7, 15, 16, 198, 18, 1, 2, 198, 18, 1, 1, 198, 18, 1, 1])
        // The timestamp had room for one entry: the second hop counts as an overflow.
        #expect(Array(reply.options[15..<23]) == [68, 12, 13, 0x11, 198, 18, 1, 1])
        #expect(reply.options[27] == 0)  // end of list pads to 28
        #expect(reply.payload.first == 0)  // an echo reply
        #expect(lab.poolIsAtBaseline)
    }

    /// icmp_reply through ip_append_data: a 4000-byte echo, reassembled, is answered in
    /// fragments of the path (one identification, DF clear, MF on all but the last, offsets in
    /// 8-byte units) whose bytes put together are the request's with type 0 — and a record
    /// route option rides in the first fragment only (RFC 791: not a copied option).
    @Test func aLongEchoIsAnsweredInFragmentsWithOptionsOnlyInTheFirst() throws {
        let lab = try ForwardLab()
        let data = (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for withOptions in [false, true] {
            let request = ForwardLab.echoRequest(to: ForwardLab.routerA, sequence: withOptions ? 2 : 1, data: data)
            let recordRoute: [UInt8] = [7, 11, 4] + [UInt8](repeating: 0, count: 8) + [0]
            let pieces = ReassemblyTests.fragments(of: request, sizes: [1480, 1480, 1480])
            lab.deliver(withOptions ? [ForwardLab.withOptions(pieces[0], recordRoute)] + pieces.dropFirst() : pieces)
            let replies = lab.sent(on: lab.wire0).map(SentIPv4.init)
            try #require(replies.count == 3)
            let firstHeader = withOptions ? 32 : 20
            #expect(replies[0].headerLength == firstHeader && replies[1].headerLength == 20)
            #expect(replies.allSatisfy { $0.headerChecksumIsValid && $0.totalLength <= 1500 })
            #expect(Set(replies.map { UInt16($0.frame[18]) << 8 | UInt16($0.frame[19]) }).count == 1)
            #expect(replies.map { $0.flagsAndOffset & 0xE000 } == [0x2000, 0x2000, 0])
            var joined: [UInt8] = []
            for reply in replies {
                #expect(Int(reply.flagsAndOffset & 0x1FFF) * 8 == joined.count)
                joined += reply.payload
            }
            #expect(joined == Self.echoReplyMessage(for: request))
            if withOptions {
                #expect(Array(replies[0].options.prefix(11)) == [7, 11, 12, 198, 18, 1, 1, 198, 18, 1, 1])
            }
        }
        #expect(lab.stack.ipv4.icmp.statistics[.outEchoReps] == 2)
        #expect(lab.stack.ipv4.statistics[.fragCreates] == 6 && lab.stack.ipv4.statistics[.fragOKs] == 2)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aBadChecksumOrABroadcastEchoGetsNoReply() throws {
        let lab = try ForwardLab()
        var corrupt = ForwardLab.echoRequest(to: ForwardLab.routerA)
        corrupt[40] ^= 0xFF
        lab.deliver(corrupt)
        lab.deliver(ForwardLab.echoRequest(to: ip("198.18.1.255")))
        #expect(lab.sent(on: lab.wire0).isEmpty)
        #expect(lab.drops(.icmpChecksum) == 1 && lab.drops(.icmpIgnored) == 1)
        #expect(lab.stack.ipv4.icmp.statistics[.inCsumErrors] == 1)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func noErrorAboutAnErrorAFragmentABroadcastOrABadSource() throws {
        let lab = try ForwardLab()
        var laterFragment = ForwardLab.frame(destination: ip("198.19.3.3"), ttl: 1, dontFragment: false)
        laterFragment[20] = 0x00
        laterFragment[21] = 0x10
        fixChecksum(&laterFragment)
        let unreachable = ForwardLab.frame(destination: ip("198.19.3.3"), protocol: .icmp, ttl: 1,
                                           payload: [3, 1, 0, 0, 0, 0, 0, 0])
        let broadcastFrame = ForwardLab.frame(destination: ip("198.19.3.3"), ttl: 1, toMAC: .broadcast)
        let broadcastSource = ForwardLab.frame(source: ip("198.18.1.255"), destination: ip("198.19.3.3"), ttl: 1)
        lab.deliver([unreachable, laterFragment, broadcastFrame, broadcastSource])
        #expect(lab.sent(on: lab.wire0).isEmpty)
        #expect(lab.stack.ipv4.icmp.statistics[.outMsgs] == 0)
        // An echo request is not an error: time exceeded about it is sent.
        lab.deliver(ForwardLab.frame(destination: ip("198.19.3.3"), protocol: .icmp, ttl: 1, payload: [8, 0, 0, 0, 0, 0, 0, 0]))
        #expect(lab.sent(on: lab.wire0).count == 1)
        #expect(lab.poolIsAtBaseline)
    }

    func fixChecksum(_ frame: inout [UInt8]) {
        frame[24] = 0
        frame[25] = 0
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(Array(frame[14..<34]), count: 20))
        frame[24] = UInt8(sum >> 8)
        frame[25] = UInt8(sum & 0xFF)
    }

    @Test func errorsToOneHostAreLimitedToABurstOfSixThenOnePerSecond() throws {
        let lab = try ForwardLab()
        let expired = (0..<10).map { ForwardLab.frame(destination: ip("198.19.3.\($0 + 1)"), ttl: 1) }
        lab.deliver(expired)
        #expect(lab.sent(on: lab.wire0).count == 6)
        #expect(lab.stack.ipv4.icmp.statistics[.outRateLimitHost] == 4)
        lab.clock.advance(by: .milliseconds(500))
        lab.deliver(expired[0])
        #expect(lab.sent(on: lab.wire0).isEmpty)
        lab.clock.advance(by: .milliseconds(500))
        lab.deliver(expired[0])
        #expect(lab.sent(on: lab.wire0).count == 1)
        // Fragmentation needed is never limited; echo replies are not in the mask.
        try lab.stack.setMTU("eth1", 1280)
        lab.deliver((0..<8).map { _ in ForwardLab.frame(destination: ip("198.19.3.3"), payload: Array(repeating: 1, count: 1300)) })
        lab.deliver((0..<8).map { ForwardLab.echoRequest(to: ForwardLab.routerA, sequence: UInt16($0)) })
        #expect(lab.sent(on: lab.wire0).count == 16)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func theGlobalLimitCapsAllDestinations() throws {
        var limits = ICMPRateLimitParameters()
        limits.burst = 5
        limits.messagesPerSecond = 10
        let lab = try ForwardLab(rateLimits: limits)
        // Sources spread over host A's subnet, one error each: only the global bucket bites.
        var frames: [[UInt8]] = []
        for i in 0..<20 {
            let source = ip("198.18.1.\(i + 10)")
            try lab.stack.addNeighbour(source, linkAddress: mac(UInt8(i + 10), 1), device: "eth0")
            frames.append(ForwardLab.frame(source: source, destination: ip("198.19.3.3"), ttl: 1))
        }
        lab.deliver(frames)
        #expect(lab.sent(on: lab.wire0).count == 5)
        #expect(lab.stack.ipv4.icmp.statistics[.outRateLimitGlobal] == 15)
        lab.clock.advance(by: .milliseconds(300))
        lab.deliver(frames.suffix(10))
        #expect(lab.sent(on: lab.wire0).count == 3)
    }
}

extension IPv4Address {
    var bytes: [UInt8] { [self[0], self[1], self[2], self[3]] }
}

extension MACAddress {
    var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 6)
        out.withUnsafeMutableBytes { store(to: $0.baseAddress!) }
        return out
    }
}

@Suite struct ICMPStatisticsTests {
    @Test func theSNMPLinesNameEveryCounterAsProcNetSnmpDoes() {
        let lines = ICMPStatistics(workers: 1).snmpLines().split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds"))
        #expect(lines[0].hasSuffix("OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps"))
        #expect(lines[1].split(separator: " ").count == ICMPStatistics.Counter.allCases.count + 1)
    }
}
