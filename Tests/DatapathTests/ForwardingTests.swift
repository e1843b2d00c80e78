import Testing
import Datapath
import DatapathCore
import DatapathWire

/// ip_rcv → route → ip_forward → ip_output → neighbour → dev_queue_xmit on in-memory devices.
@Suite struct ForwardingTests {
    @Test func aPacketIsForwardedWithTTLLessOneAndAValidChecksum() throws {
        let lab = try ForwardLab()
        let payload = (0..<40).map { UInt8($0 * 3 & 0xFF) }
        lab.deliver(ForwardLab.frame(destination: ip("198.19.7.9"), ttl: 17, payload: payload))
        let out = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(out.count == 1)
        let packet = try #require(out.first)
        #expect(packet.destinationMAC == ForwardLab.hostBMAC)
        #expect(packet.sourceMAC == lab.eth1.macAddress)
        #expect(packet.ttl == 16)
        #expect(packet.headerChecksumIsValid)
        #expect(packet.source == ForwardLab.hostA && packet.destination == ip("198.19.7.9"))
        #expect(Array(packet.payload) == payload)
        #expect(lab.stack.ipv4.statistics[.forwDatagrams] == 1)
        #expect(lab.sent(on: lab.wire0).isEmpty)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func theChecksumStaysValidAcrossEveryTTLAndHeader() throws {
        let lab = try ForwardLab()
        var frames: [[UInt8]] = []
        for ttl in 2...255 {
            frames.append(ForwardLab.frame(destination: ip("198.19.0.\(ttl % 250 + 1)"), ttl: UInt8(ttl),
                                           identification: UInt16(ttl * 257 & 0xFFFF), tos: UInt8(ttl & 0xFC)))
        }
        lab.deliver(frames)
        let out = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(out.count == frames.count)
        #expect(out.allSatisfy { $0.headerChecksumIsValid })
        #expect(out.map(\.ttl) == (2...255).map { UInt8($0 - 1) })
    }

    @Test func aConnectedDestinationIsResolvedFirstAndThenForwarded() throws {
        let lab = try ForwardLab()
        lab.deliver(ForwardLab.frame(destination: ip("198.18.2.77")))
        let request = try #require(lab.sent(on: lab.wire1).compactMap(SentARP.init).first)
        #expect(request.repr.operation == .request && request.repr.targetProtocolAddress == ip("198.18.2.77"))
        #expect(request.repr.senderProtocolAddress == ForwardLab.routerB)
        lab.deliver(arpFrame(.reply, senderMAC: mac(0x77), sender: ip("198.18.2.77"), targetMAC: lab.eth1.macAddress,
                             target: ForwardLab.routerB, destination: lab.eth1.macAddress), on: lab.eth1)
        let out = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(out.count == 1 && out.first?.destinationMAC == mac(0x77))
        #expect(lab.poolIsAtBaseline)
    }

    @Test func mixedNextHopsLeaveInOrderPerNeighbour() throws {
        let lab = try ForwardLab()
        try lab.stack.addNeighbour(ip("198.18.2.3"), linkAddress: mac(0xB3), device: "eth1")
        try lab.stack.addRoute(RouteSpec(prefix: IPv4Prefix("198.19.5.0/24")!, gateway: ip("198.18.2.3")))
        var frames: [[UInt8]] = []
        for i in 0..<60 {
            let destination = i % 3 == 0 ? "198.19.5.\(i + 1)" : (i % 3 == 1 ? "198.19.6.\(i + 1)" : "198.18.1.2")
            frames.append(ForwardLab.frame(destination: ip(destination), identification: UInt16(i)))
        }
        lab.deliver(frames)
        let toB = lab.sent(on: lab.wire1).map(SentIPv4.init)
        let backToA = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(toB.filter { $0.destinationMAC == mac(0xB3) }.map { $0.frame[19] } == stride(from: 0, to: 60, by: 3).map(UInt8.init))
        #expect(toB.filter { $0.destinationMAC == ForwardLab.hostBMAC }.map { $0.frame[19] } == stride(from: 1, to: 60, by: 3).map(UInt8.init))
        #expect(backToA.map { $0.frame[19] } == stride(from: 2, to: 60, by: 3).map(UInt8.init))
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aFrameNotSentToUsIsNotForwarded() throws {
        let lab = try ForwardLab()
        lab.deliver(ForwardLab.frame(destination: ip("198.19.1.1"), toMAC: .broadcast))
        #expect(lab.sent(on: lab.wire1).isEmpty)
        #expect(lab.drops(.otherHost) == 1)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func errorRoutesDropWithTheirReasons() throws {
        let lab = try ForwardLab()
        try lab.stack.apply("""
            route add blackhole 198.19.99.0/24
            route add unreachable 198.19.98.0/24
            route add prohibit 198.19.97.0/24
            """)
        lab.deliver([ForwardLab.frame(destination: ip("198.19.99.1")), ForwardLab.frame(destination: ip("198.19.98.1")),
                     ForwardLab.frame(destination: ip("198.19.97.1")), ForwardLab.frame(destination: ip("198.20.0.1")),
                     ForwardLab.frame(source: ForwardLab.routerB, destination: ip("198.19.1.1"))])
        #expect(lab.sent(on: lab.wire1).isEmpty)
        let errors = lab.sent(on: lab.wire0).map(SentIPv4.init)
        // unreachable → host unreachable (1), prohibit → 13, no route → net unreachable (0).
        #expect(errors.map { [$0.payload.first!, $0.payload.dropFirst().first!] } == [[3, 1], [3, 13], [3, 0]])
        #expect(lab.drops(.ipBlackhole) == 1)
        #expect(lab.drops(.ipNoRoute) == 2)
        #expect(lab.drops(.ipProhibited) == 1)
        #expect(lab.drops(.ipInvalidSource) == 1)
        #expect(lab.stack.ipv4.statistics[.inNoRoutes] == 1)
        #expect(lab.stack.ipv4.statistics[.inAddrErrors] == 1)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aLargePacketWithoutDFIsFragmentedOnASmallerMTU() throws {
        let lab = try ForwardLab()
        try lab.stack.setMTU("eth1", 576)
        let payload = (0..<1480).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        lab.deliver(ForwardLab.frame(destination: ip("198.19.1.1"), payload: payload, dontFragment: false,
                                     identification: 0xBEEF))
        let fragments = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(fragments.count == 3)
        #expect(fragments.allSatisfy { $0.totalLength <= 576 && $0.headerChecksumIsValid && $0.ttl == 63 })
        #expect(fragments.allSatisfy { $0.frame[18] == 0xBE && $0.frame[19] == 0xEF })
        let offsets = fragments.map { Int($0.flagsAndOffset & 0x1FFF) * 8 }
        #expect(offsets == [0, 552, 1104])
        #expect(fragments.map { $0.flagsAndOffset & 0x2000 != 0 } == [true, true, false])
        #expect(Array(fragments.map(\.payload).joined()) == payload)
        #expect(lab.stack.ipv4.statistics[.fragOKs] == 1 && lab.stack.ipv4.statistics[.fragCreates] == 3)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func laterFragmentsKeepOnlyTheOptionsMarkedCopied() throws {
        let lab = try ForwardLab()
        try lab.stack.setMTU("eth1", 576)
        let security: [UInt8] = [130, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9]       // copied flag set
        let recordRoute: [UInt8] = [7, 7, 4, 0, 0, 0, 0]                  // not copied
        let options = security + recordRoute + [0, 0]
        var frame = ForwardLab.frame(destination: ip("198.19.1.1"), payload: Array(repeating: 0xAB, count: 1200),
                                     dontFragment: false)
        frame.insert(contentsOf: options, at: 34)
        frame[14] = 0x40 | UInt8((20 + options.count) / 4)
        let total = 20 + options.count + 1200
        frame[16] = UInt8(total >> 8); frame[17] = UInt8(total & 0xFF)
        frame[24] = 0; frame[25] = 0
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(Array(frame[14..<54]), count: 40))
        frame[24] = UInt8(sum >> 8); frame[25] = UInt8(sum & 0xFF)
        lab.deliver(frame)
        let fragments = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(fragments.count == 3)
        #expect(fragments.allSatisfy { $0.headerLength == 40 && $0.headerChecksumIsValid })
        // The first fragment carries every option, the record route now holding this router's
        // outgoing address (ip_forward_options).
        #expect(Array(fragments[0].frame[34..<54]) == security + [7, 7, 8, 198, 18, 2, 1] + [0, 0])
        let nooped = security + [1, 1, 1, 1, 1, 1, 1] + [0, 0]
        #expect(fragments.dropFirst().allSatisfy { Array($0.frame[34..<54]) == nooped })
        #expect(Array(fragments.map(\.payload).joined()) == Array(repeating: 0xAB, count: 1200))
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aChecksumLeftToTheDeviceIsCompletedBeforeFragmenting() throws {
        let lab = try ForwardLab()
        try lab.stack.setMTU("eth1", 576)
        let destination = ip("198.19.1.1")
        var udp = [UInt8](repeating: 0, count: 8) + (0..<1200).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        udp[0] = 0x30; udp[1] = 0x39; udp[2] = 0x00; udp[3] = 0x09
        udp[4] = UInt8(udp.count >> 8); udp[5] = UInt8(udp.count & 0xFF)
        // As the sender's stack leaves it for the device (CHECKSUM_PARTIAL): the folded
        // pseudo-header sum, not complemented.
        let pseudo = InternetChecksum.pseudoHeaderSum(source: ForwardLab.hostA, destination: destination,
                                                      protocol: .udp, length: udp.count)
        let partial = InternetChecksum.fold(pseudo)
        udp[6] = UInt8(partial >> 8); udp[7] = UInt8(partial & 0xFF)
        lab.deliver([ForwardLab.frame(destination: destination, protocol: .udp, payload: udp, dontFragment: false)],
                    checksum: .partial)
        let reassembled = Array(lab.sent(on: lab.wire1).map { SentIPv4($0).payload }.joined())
        #expect(reassembled.count == udp.count)
        #expect(InternetChecksum.fold(InternetChecksum.sum(reassembled, count: reassembled.count, initial: pseudo)) == 0xFFFF)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aDownOutputDeviceMeansNoRoute() throws {
        let lab = try ForwardLab()
        lab.deliver(ForwardLab.frame(destination: ip("198.19.1.1")))
        #expect(lab.sent(on: lab.wire1).count == 1)
        try lab.stack.setUp("eth1", false)
        lab.deliver(ForwardLab.frame(destination: ip("198.19.1.1")))
        #expect(lab.sent(on: lab.wire1).isEmpty)
        #expect(lab.drops(.ipNoRoute) == 1)
        #expect(lab.sent(on: lab.wire0).map { $0[34] } == [3])
        try lab.stack.setUp("eth1", true)
        lab.deliver(ForwardLab.frame(destination: ip("198.19.1.1")))
        #expect(lab.sent(on: lab.wire1).count == 1)
        #expect(lab.poolIsAtBaseline)
    }
}
