import Testing
import Datapath
import DatapathCore
import DatapathWire

/// ip_defrag: echo requests sent to the router in fragments come back as one reply only when
/// reassembly got every byte right; bad fragment sets are dropped whole, with their reasons.
@Suite struct ReassemblyTests {
    /// `frame` (Ethernet + IPv4, DF clear) cut into fragments of the given payload sizes (each a
    /// multiple of 8 but the last), as a sender's ip_fragment would.
    static func fragments(of frame: [UInt8], sizes: [Int]) -> [[UInt8]] {
        let header = Array(frame[14..<34])
        let payload = Array(frame[34...])
        var out: [[UInt8]] = []
        var offset = 0
        for (i, size) in sizes.enumerated() {
            let length = min(size, payload.count - offset)
            let isLast = i == sizes.count - 1
            out.append(fragment(header: header, frame: frame, payload: Array(payload[offset..<(offset + length)]),
                                offset: offset, more: !isLast))
            offset += length
        }
        return out
    }

    static func fragment(header: [UInt8], frame: [UInt8], payload: [UInt8], offset: Int, more: Bool) -> [UInt8] {
        var ip = header
        let total = 20 + payload.count
        ip[2] = UInt8(total >> 8)
        ip[3] = UInt8(total & 0xFF)
        let field = UInt16(offset / 8) | (more ? 0x2000 : 0)
        ip[6] = UInt8(field >> 8)
        ip[7] = UInt8(field & 0xFF)
        ip[10] = 0
        ip[11] = 0
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(ip, count: 20))
        ip[10] = UInt8(sum >> 8)
        ip[11] = UInt8(sum & 0xFF)
        return Array(frame[0..<14]) + ip + payload
    }

    /// Random 8-byte-multiple cuts of `length` bytes.
    static func randomSizes(_ length: Int, using random: inout SplitMix64) -> [Int] {
        var sizes: [Int] = []
        var left = length
        while left > 0 {
            let size = min(left, (Int(random.next() % 180) + 1) * 8)
            sizes.append(size)
            left -= size
        }
        return sizes
    }

    /// The ICMP payload of the echo reply the lab got back (the router may fragment it too).
    static func replyData(_ lab: ForwardLab) -> [UInt8]? {
        let frames = lab.sent(on: lab.wire0).map(SentIPv4.init)
        guard !frames.isEmpty else { return nil }
        let sorted = frames.sorted { ($0.flagsAndOffset & 0x1FFF) < ($1.flagsAndOffset & 0x1FFF) }
        let message = Array(sorted.map(\.payload).joined())
        guard message.count >= 8, message[0] == 0 else { return nil }
        return Array(message[8...])
    }

    @Test func randomSizesOrdersAndDuplicatesReassembleExactly() throws {
        var random = SplitMix64(seed: 2026)
        for round in 0..<40 {
            let lab = try ForwardLab()
            let length = Int(random.next() % 9000) + 1 + (round % 4 == 0 ? 20000 : 0)
            let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ round) }
            let request = ForwardLab.echoRequest(to: ForwardLab.routerA, sequence: UInt16(round), data: data)
            var unique = ReassemblyTests.fragments(of: request, sizes: ReassemblyTests.randomSizes(request.count - 34,
                                                                                                  using: &random))
            for i in stride(from: unique.count - 1, to: 0, by: -1) { unique.swapAt(i, Int(random.next() % UInt64(i + 1))) }
            // Duplicates anywhere before the piece that completes the datagram (a duplicate after
            // it would start a new datagram, as in Linux).
            let last = unique.removeLast()
            var pieces = unique
            if !unique.isEmpty {
                for _ in 0..<Int(random.next() % 4) { pieces.append(unique[Int(random.next() % UInt64(unique.count))]) }
            }
            for i in stride(from: pieces.count - 1, to: 0, by: -1) { pieces.swapAt(i, Int(random.next() % UInt64(i + 1))) }
            pieces.append(last)
            lab.deliver(pieces)
            #expect(ReassemblyTests.replyData(lab) == data, "round \(round): \(length) bytes in \(pieces.count) pieces")
            #expect(lab.stack.ipv4.statistics[.reasmOKs] == (unique.isEmpty ? 0 : 1))
            #expect(lab.drops(.fragDuplicate) == UInt64(pieces.count - unique.count - 1))
            #expect(lab.stack.ipv4.reassemblyQueues(worker: 0).datagrams == 0)
            #expect(lab.poolIsAtBaseline)
        }
    }

    @Test func anOverlapDropsTheWholeDatagram() throws {
        let lab = try ForwardLab()
        let request = ForwardLab.echoRequest(to: ForwardLab.routerA, data: Array(repeating: 7, count: 2000))
        var pieces = ReassemblyTests.fragments(of: request, sizes: [800, 800, 408])
        let header = Array(request[14..<34])
        // Bytes 400..<1200 again: overlaps the first two.
        pieces.insert(ReassemblyTests.fragment(header: header, frame: request, payload: Array(request[434..<1234]),
                                               offset: 400, more: true), at: 1)
        lab.deliver(pieces)
        #expect(lab.sent(on: lab.wire0).isEmpty)
        #expect(lab.drops(.fragOverlap) == 1)
        #expect(lab.stack.ipv4.statistics[.reasmFails] == 1)
        #expect(lab.stack.ipv4.statistics[.reasmOKs] == 0)
        // The fragments after the overlap start a new datagram that never completes; it holds
        // only pool memory, which the test gives back by expiring it.
        lab.clock.advance(by: .seconds(31))
        lab.stack.ipv4.expireFragments(worker: lab.worker)
        _ = lab.sent(on: lab.wire0)
        #expect(lab.stack.ipv4.reassemblyQueues(worker: 0).datagrams == 0)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aFragmentPast65535BytesIsRefused() throws {
        let lab = try ForwardLab()
        let request = ForwardLab.echoRequest(to: ForwardLab.routerA, data: Array(repeating: 1, count: 100))
        let header = Array(request[14..<34])
        lab.deliver(ReassemblyTests.fragment(header: header, frame: request, payload: Array(repeating: 0, count: 64),
                                             offset: 65480, more: false))
        #expect(lab.drops(.fragTooBig) == 1)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func anIncompleteDatagramExpiresWithTimeExceededAboutItsFirstFragment() throws {
        let lab = try ForwardLab()
        let request = ForwardLab.echoRequest(to: ForwardLab.routerA, data: Array(repeating: 3, count: 3000))
        let pieces = ReassemblyTests.fragments(of: request, sizes: [1480, 1480, 48])
        lab.deliver([pieces[0], pieces[2]])
        #expect(lab.stack.ipv4.reassemblyQueues(worker: 0).datagrams == 1)
        lab.clock.advance(by: .seconds(29))
        lab.stack.ipv4.expireFragments(worker: lab.worker)
        #expect(lab.sent(on: lab.wire0).isEmpty)
        lab.clock.advance(by: .milliseconds(1500))
        lab.stack.ipv4.expireFragments(worker: lab.worker)
        let sent = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(sent.count == 1)
        #expect(sent.first.map { Array($0.payload.prefix(2)) } == [11, 1])
        #expect(sent.first.map { Array($0.payload.dropFirst(8).prefix(28)) } == Array(pieces[0][14..<42]))
        #expect(lab.stack.ipv4.statistics[.reasmTimeout] == 1 && lab.stack.ipv4.statistics[.reasmFails] == 1)
        #expect(lab.drops(.fragReassemblyTimeout) == 1)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func memoryStaysBelowTheThresholdUnderAFloodOfFirstFragments() throws {
        var limits = ReassemblyParameters()
        limits.highThreshold = 64 << 10
        let lab = try ForwardLab(reassembly: limits)
        var frames: [[UInt8]] = []
        for id in 0..<200 {
            let request = ForwardLab.frame(destination: ForwardLab.routerA, protocol: .icmp,
                                           payload: Array(repeating: 0, count: 1000), dontFragment: false,
                                           identification: UInt16(id))
            frames.append(ReassemblyTests.fragments(of: request, sizes: [504, 504])[0])
        }
        lab.deliver(frames)
        let held = lab.stack.ipv4.reassemblyQueues(worker: 0)
        #expect(held.bytes <= 64 << 10)
        #expect(held.datagrams > 0 && held.datagrams < 200)
        #expect(lab.drops(.fragMemoryLimit) == UInt64(200 - held.datagrams))
        lab.clock.advance(by: .seconds(31))
        lab.stack.ipv4.expireFragments(worker: lab.worker)
        _ = lab.sent(on: lab.wire0)
        #expect(lab.stack.ipv4.reassemblyQueues(worker: 0).datagrams == 0)
        #expect(lab.poolIsAtBaseline)
    }
}

/// #13 item 6: the reassembly bound holds against fragments of datagrams already started.
@Suite struct ReassemblyExhaustionTests {
    /// One datagram started under the bound, then thousands of 8-byte fragments for it (and
    /// for a few more): fragment memory stays at the threshold, the rest are dropped with
    /// their reason, and a ping through the router is still answered meanwhile.
    @Test func tinyFragmentsOfStartedDatagramsStayWithinTheBound() throws {
        var limits = ReassemblyParameters()
        limits.highThreshold = 256 << 10
        let lab = try ForwardLab(reassembly: limits)
        let header = Array(ForwardLab.frame(destination: ForwardLab.routerA, protocol: .udp,
                                            payload: Array(repeating: 0, count: 64), dontFragment: false)[..<34])
        var frames: [[UInt8]] = []
        for id in 0..<4 {
            var ip = Array(header[14..<34])
            ip[4] = 0x42; ip[5] = UInt8(id)
            // Offsets 8, 16, … (never the first or the last): each its own pool buffer.
            for n in 1...2000 {
                frames.append(ReassemblyTests.fragment(header: ip, frame: header, payload: Array(repeating: 0xAB, count: 8),
                                                       offset: n * 8, more: true))
            }
        }
        for chunk in stride(from: 0, to: frames.count, by: 200) {
            lab.deliver(Array(frames[chunk..<min(chunk + 200, frames.count)]))
            #expect(lab.stack.ipv4.reassemblyQueues(worker: 0).bytes <= 256 << 10)
        }
        let held = lab.stack.ipv4.reassemblyQueues(worker: 0)
        #expect(held.bytes <= 256 << 10 && held.bytes > 200 << 10)
        #expect(lab.drops(.fragMemoryLimit) > 7000)
        // Service continues: a ping to the router is answered.
        lab.deliver(ForwardLab.echoRequest(to: ForwardLab.routerA, data: Array(repeating: 1, count: 56)))
        #expect(lab.sent(on: lab.wire0).contains { $0.count >= 34 && $0[23] == 1 && $0[34] == 0 })
        lab.clock.advance(by: .seconds(31))
        lab.stack.ipv4.expireFragments(worker: lab.worker)
        _ = lab.sent(on: lab.wire0)
        #expect(lab.stack.ipv4.reassemblyQueues(worker: 0).datagrams == 0)
        #expect(lab.poolIsAtBaseline)
    }
}

@Suite struct ReassemblyOptionTests {
    @Test func laterFragmentsWithShorterHeadersReassembleUnderTheFirstOnesHeader() throws {
        let lab = try ForwardLab()
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 5) }
        let request = ForwardLab.echoRequest(to: ForwardLab.routerA, data: data)
        let payload = Array(request[34...])
        // First fragment: a 24-byte header (a record-route-free NOP/EOL option word).
        var first = Array(request[14..<34])
        first[0] = 0x46
        first += [1, 1, 1, 0]
        func finish(_ header: [UInt8], _ body: [UInt8], offset: Int, more: Bool) -> [UInt8] {
            var ip = header
            let total = ip.count + body.count
            ip[2] = UInt8(total >> 8); ip[3] = UInt8(total & 0xFF)
            let field = UInt16(offset / 8) | (more ? 0x2000 : 0)
            ip[6] = UInt8(field >> 8); ip[7] = UInt8(field & 0xFF)
            ip[10] = 0; ip[11] = 0
            let sum = ~InternetChecksum.fold(InternetChecksum.sum(ip, count: ip.count))
            ip[10] = UInt8(sum >> 8); ip[11] = UInt8(sum & 0xFF)
            return Array(request[0..<14]) + ip + body
        }
        let frames = [finish(first, Array(payload[0..<512]), offset: 0, more: true),
                      finish(Array(request[14..<34]), Array(payload[512...]), offset: 512, more: false)]
        lab.deliver(frames.reversed())
        #expect(ReassemblyTests.replyData(lab) == data)
        #expect(lab.poolIsAtBaseline)
    }
}
