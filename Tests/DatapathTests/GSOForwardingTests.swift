import Testing
import Datapath
import DatapathCore
import DatapathWire

/// ip_forward and ip_finish_output for GSO packets (as AF_PACKET with virtio-net headers
/// delivers TSO/GRO super-frames): judged by the size of their segments, never fragmented.
@Suite struct GSOForwardingTests {
    /// A 1900-byte IPv4/TCP super-packet to beyond host B, to leave as `segment`-byte segments.
    func deliver(_ lab: ForwardLab, segment: Int, dontFragment: Bool = true) {
        var tcp = [UInt8](repeating: 0, count: 20)
        tcp[12] = 0x50
        let frame = ForwardLab.frame(destination: ip("198.19.5.5"), protocol: .tcp,
                                     payload: tcp + [UInt8](repeating: 0x77, count: 1860), dontFragment: dontFragment)
        lab.deliver([frame]) { skb in
            skb.gsoSize = segment
            skb.gsoType = .tcpv4
        }
    }

    @Test func segmentsThatFitTheMTULeaveWholeOnADeviceThatSegments() throws {
        let lab = try ForwardLab()
        try lab.stack.setMTU("eth1", 1000)
        lab.eth1.supportsGSO = true
        deliver(lab, segment: 600)  // 20 + 20 + 600 = 640 per segment
        let out = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(out.count == 1 && out.first?.totalLength == 1900 && out.first?.ttl == 63)
        #expect(lab.stack.ipv4.statistics[.fragCreates] == 0)
        #expect(lab.poolIsAtBaseline)
    }

    /// A device without segmentation offload gets the segments, made in software.
    @Test func aDeviceWithoutGSOGetsTheSegments() throws {
        let lab = try ForwardLab()
        try lab.stack.setMTU("eth1", 1000)
        deliver(lab, segment: 600)
        let out = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(out.map(\.totalLength) == [640, 640, 640, 100])
        #expect(out.allSatisfy { $0.headerChecksumIsValid && $0.ttl == 63 && $0.flagsAndOffset == 0x4000 })
        #expect(Array(out.map { $0.payload.dropFirst(20) }.joined()) == [UInt8](repeating: 0x77, count: 1860))
        #expect(lab.poolIsAtBaseline)
    }

    @Test func segmentsLargerThanTheMTUWithDFGetFragmentationNeeded() throws {
        let lab = try ForwardLab()
        try lab.stack.setMTU("eth1", 1000)
        deliver(lab, segment: 1200)  // 1240-byte segments
        #expect(lab.sent(on: lab.wire1).isEmpty)
        let errors = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(errors.count == 1)
        let error = try #require(errors.first)
        // Type 3 code 4, next-hop MTU 1000 in the second half of the rest-of-header word.
        #expect(Array(error.payload.prefix(2)) == [3, 4])
        #expect(Array(error.payload.dropFirst(6).prefix(2)) == [0x03, 0xE8])
        #expect(lab.drops(.fragmentationNeeded) == 1)
        #expect(lab.poolIsAtBaseline)
    }

    /// Without DF the segments are made in software and those still too long fragmented
    /// (Linux: `ip_finish_output_gso`).
    @Test func segmentsLargerThanTheMTUWithoutDFAreSegmentedThenFragmented() throws {
        let lab = try ForwardLab()
        try lab.stack.setMTU("eth1", 1000)
        deliver(lab, segment: 1200, dontFragment: false)  // segments of 1240 and 700 bytes
        let out = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(out.count == 3)
        #expect(out.allSatisfy { $0.totalLength <= 1000 && $0.headerChecksumIsValid })
        #expect(lab.stack.ipv4.statistics[.fragOKs] == 1 && lab.stack.ipv4.statistics[.fragCreates] == 2)
        #expect(lab.drops(.gsoSegmentation) == 0)
        #expect(lab.poolIsAtBaseline)
    }
}
