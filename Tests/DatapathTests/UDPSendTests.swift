import Testing
import Datapath
import DatapathCore
import DatapathWire

/// `udp_sendmsg` on the router of `ForwardLab`, to host B (198.18.2.2 behind eth1).
@Suite struct UDPSendTests {
    func send(_ lab: ForwardLab, _ payload: [UInt8], from id: UInt32, to destination: SocketAddress? = nil) throws {
        try payload.withUnsafeBytes { try lab.stack.udp.send($0, from: id, to: destination, worker: lab.worker) }
    }

    @Test func aDatagramLeavesWithTheRoutesSourceAddressAValidChecksumAndDF() throws {
        let lab = try ForwardLab()
        let bound = try lab.stack.udp.open(1, local: .any(), receiver: RecordingUDPReceiver())
        try send(lab, Array(0..<100), from: 1, to: SocketAddress(ForwardLab.hostB, 9000))
        let frames = lab.sent(on: lab.wire1)
        #expect(frames.count == 1)
        let ip = try #require(frames.first.map(SentIPv4.init))
        #expect(ip.source == ForwardLab.routerB && ip.destination == ForwardLab.hostB && ip.protocolNumber == 17)
        #expect(ip.headerChecksumIsValid && ip.frame[20] & 0x40 != 0)   // DF: it fits (IP_PMTUDISC_WANT)
        var udp = Array(ip.payload)
        let valid = udp.withUnsafeMutableBytes { raw in
            UDPHeader(unchecked: raw.baseAddress!).isChecksumValid(source: ip.source, destination: ip.destination)
        }
        #expect(valid && udp[0] == UInt8(bound.port >> 8) && udp[1] == UInt8(bound.port & 0xFF))
        #expect(udp[2] == 0x23 && udp[3] == 0x28 && Array(udp[8...]) == Array(0..<100))
        #expect(lab.stack.udp.statistics[.outDatagrams] == 1)
        #expect(lab.poolIsAtBaseline)
    }

    /// ip_append_data: for random sizes and MTUs, fragments of `(mtu − 20) & ~7` bytes with
    /// one identification, contiguous offsets, MF on all but the last — and together the
    /// datagram, its checksum valid.
    @Test func longDatagramsLeaveInFragmentsThatMakeTheDatagramAgain() throws {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<12 {
            let lab = try ForwardLab()
            let mtu = 576 + Int(rng.next() % 925)
            try lab.stack.setMTU("eth1", mtu)
            try lab.stack.udp.open(1, local: SocketAddress(ForwardLab.routerB, 7), receiver: RecordingUDPReceiver())
            let size = 1 + Int(rng.next() % 20000)
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            try send(lab, payload, from: 1, to: SocketAddress(ForwardLab.hostB, 53))
            let fragments = lab.sent(on: lab.wire1).map(SentIPv4.init)
            let unit = (mtu - 20) & ~7
            let total = 8 + size
            #expect(fragments.count == (20 + total <= mtu ? 1 : (total + unit - 1) / unit), "size \(size) mtu \(mtu)")
            var datagram: [UInt8] = []
            for (n, fragment) in fragments.enumerated() {
                let flags = UInt16(fragment.frame[20]) << 8 | UInt16(fragment.frame[21])
                #expect(fragment.frame.count - 14 <= mtu && fragment.headerChecksumIsValid)
                #expect(Int(flags & 0x1FFF) * 8 == datagram.count)
                #expect((flags & 0x2000 != 0) == (n < fragments.count - 1))
                #expect(fragment.frame[18] == fragments[0].frame[18] && fragment.frame[19] == fragments[0].frame[19])
                datagram += fragment.payload
            }
            #expect(datagram.count == total && Array(datagram[8...]) == payload)
            let valid = datagram.withUnsafeMutableBytes { raw in
                UDPHeader(unchecked: raw.baseAddress!).isChecksumValid(source: ForwardLab.routerB,
                                                                       destination: ForwardLab.hostB)
            }
            #expect(valid)
            #expect(lab.poolIsAtBaseline)
        }
    }

    @Test func theSocketsPathMTUModeDecidesDFAndRefusals() throws {
        let lab = try ForwardLab()
        try lab.stack.setMTU("eth1", 1000)
        try lab.stack.udp.open(1, local: .any(), sendOptions: UDPSocketOptions(pathMTUDiscovery: .do),
                               receiver: RecordingUDPReceiver())
        try lab.stack.udp.open(2, local: .any(), sendOptions: UDPSocketOptions(ttl: 9, pathMTUDiscovery: .dont),
                               receiver: RecordingUDPReceiver())
        let to = SocketAddress(ForwardLab.hostB, 9)
        #expect(throws: SocketError.messageTooLong(1200, mtu: 1000)) { try send(lab, Array(repeating: 1, count: 1200), from: 1, to: to) }
        try send(lab, [1], from: 2, to: to)
        let frame = try #require(lab.sent(on: lab.wire1).first.map(SentIPv4.init))
        #expect(frame.frame[20] & 0x40 == 0 && frame.ttl == 9)
        #expect(throws: SocketError.notConnected) { try send(lab, [1], from: 2) }
        #expect(throws: SocketError.invalidDestination(SocketAddress(ForwardLab.hostB, 0))) {
            try send(lab, [1], from: 2, to: SocketAddress(ForwardLab.hostB, 0))
        }
        #expect(throws: SocketError.notBound(3)) { try send(lab, [1], from: 3, to: to) }
        try lab.stack.udp.connect(2, to: to)
        try send(lab, [5], from: 2)
        #expect(lab.sent(on: lab.wire1).count == 1)
        #expect(throws: SocketError.noRoute(IPv4Address(198, 18, 77, 1))) {
            try send(lab, [1], from: 2, to: SocketAddress(IPv4Address(198, 18, 77, 1), 9))
        }
        #expect(lab.poolIsAtBaseline)
    }

    /// ip4_datagram_connect: connect routes once — no route (or an unreachable one) and a
    /// broadcast without SO_BROADCAST are refused and leave the socket as it was; a
    /// wildcard-bound socket takes the route's source address, and gives it back on
    /// disconnect. The worker keeps the connected socket's route (no route cache lookup for
    /// the next sends) until a route change makes it stale, then follows the new route.
    @Test func connectRoutesOnceAndSendsReuseTheRouteUntilItChanges() throws {
        let lab = try ForwardLab()
        try lab.stack.udp.open(1, local: .any(port: 6100), receiver: RecordingUDPReceiver())
        #expect(throws: SocketError.noRoute(IPv4Address(198, 18, 77, 1))) {
            try lab.stack.udp.connect(1, to: SocketAddress(IPv4Address(198, 18, 77, 1), 9))
        }
        try lab.stack.addRoute(RouteSpec(prefix: IPv4Prefix("198.18.78.0/24")!, type: .unreachable))
        #expect(throws: SocketError.noRoute(IPv4Address(198, 18, 78, 1))) {
            try lab.stack.udp.connect(1, to: SocketAddress(IPv4Address(198, 18, 78, 1), 9))
        }
        #expect(throws: SocketError.broadcastNotPermitted(IPv4Address(198, 18, 2, 255))) {
            try lab.stack.udp.connect(1, to: SocketAddress(IPv4Address(198, 18, 2, 255), 9))
        }
        #expect(lab.stack.udp.sockets.entry(1)?.remote == nil)
        #expect(lab.stack.udp.sockets.entry(1)?.local == .any(port: 6100))

        let peer = SocketAddress(IPv4Address(198, 18, 5, 9), 9)   // via host B, a gateway on eth1
        try lab.stack.addRoute(RouteSpec(prefix: IPv4Prefix("198.18.5.0/24")!, gateway: ForwardLab.hostB))
        try lab.stack.udp.connect(1, to: peer)
        #expect(lab.stack.udp.sockets.entry(1)?.local == SocketAddress(ForwardLab.routerB, 6100))
        try send(lab, [1], from: 1)
        let lookups = lab.stack.ipv4.routeCacheCounters
        try send(lab, [2], from: 1)
        try send(lab, [3], from: 1)
        let after = lab.stack.ipv4.routeCacheCounters
        #expect(after.hits == lookups.hits && after.misses == lookups.misses)   // the held route
        #expect(lab.sent(on: lab.wire1).map { SentIPv4($0).destinationMAC } == Array(repeating: ForwardLab.hostBMAC, count: 3))

        // A more specific route out of eth0 (via host A): the held route is stale, the next
        // send takes the new one.
        try lab.stack.addRoute(RouteSpec(prefix: IPv4Prefix("198.18.5.9/32")!, gateway: ForwardLab.hostA))
        try send(lab, [4], from: 1)
        #expect(lab.sent(on: lab.wire1).isEmpty)
        let moved = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(moved.count == 1 && moved.first?.destinationMAC == ForwardLab.hostAMAC)
        #expect(moved.first?.source == ForwardLab.routerB)   // the address connect chose stays

        try lab.stack.udp.connect(1, to: nil)
        #expect(lab.stack.udp.sockets.entry(1)?.local == .any(port: 6100))
        #expect(throws: SocketError.notConnected) { try send(lab, [5], from: 1) }
        lab.stack.udp.close(1)
        #expect(lab.poolIsAtBaseline)
    }

    /// An ICMP error quoting a datagram a connected socket sent reaches the socket
    /// (`__udp4_lib_err`): port unreachable → connectionRefused; an unconnected one hears nothing.
    @Test func icmpErrorsReachTheConnectedSocketThatSentTheDatagram() throws {
        let lab = try ForwardLab()
        let connected = RecordingUDPReceiver(), unconnected = RecordingUDPReceiver()
        try lab.stack.udp.open(1, local: .any(port: 6000), receiver: connected)
        try lab.stack.udp.open(2, local: .any(port: 6001), receiver: unconnected)
        let peer = SocketAddress(ForwardLab.hostB, 9)
        try lab.stack.udp.connect(1, to: peer)
        try send(lab, [1, 2, 3], from: 1)
        try send(lab, [4, 5, 6], from: 2, to: peer)
        let sent = lab.sent(on: lab.wire1).map { Array($0[14...]) }
        #expect(sent.count == 2)
        func unreachable(code: UInt8, quoting datagram: [UInt8]) -> [UInt8] {
            ForwardLab.icmpErrorFromHostB(code: code, quoting: Array(datagram.prefix(28)))
        }
        lab.deliver([unreachable(code: 3, quoting: sent[0]), unreachable(code: 3, quoting: sent[1])], on: lab.eth1)
        #expect(connected.errors == [.connectionRefused(peer)])
        #expect(unconnected.errors.isEmpty)
        // A soft error (host unreachable) is not reported; a prohibition is.
        lab.deliver([unreachable(code: 1, quoting: sent[0])], on: lab.eth1)
        #expect(connected.errors.count == 1)
        lab.deliver([unreachable(code: 13, quoting: sent[0])], on: lab.eth1)
        #expect(connected.errors.last == .unreachable(ForwardLab.hostB))
        #expect(lab.poolIsAtBaseline)
    }

    /// The run-to-completion send (sendmmsg): an echo receiver addresses each received skb back
    /// to its sender and sends the batch — headers written in place, no copy. A batch mixing
    /// datagrams that fit, one that needs fragments, one to port 0 and one without a route
    /// leaves in order, the failures freed, the first failure returned with the count sent.
    /// Whether `udp` (a whole UDP datagram) carries only the pseudo-header sum a sender leaves
    /// for an offloading device, and completing it as the device does gives a valid checksum.
    static func isPartialAndCompletes(_ udp: [UInt8], source: IPv4Address, destination: IPv4Address) -> Bool {
        var udp = udp
        let pseudo = InternetChecksum.fold(InternetChecksum.pseudoHeaderSum(
            source: source, destination: destination, protocol: .udp, length: udp.count))
        guard udp.count >= 8, UInt16(udp[6]) << 8 | UInt16(udp[7]) == pseudo else { return false }
        return udp.withUnsafeMutableBytes { raw in
            let value = ~InternetChecksum.fold(InternetChecksum.sum(raw.baseAddress!, count: raw.count))
            raw.storeBytes(of: (value == 0 ? 0xFFFF : value).bigEndian, toByteOffset: 6, as: UInt16.self)
            return UDPHeader(unchecked: raw.baseAddress!).isChecksumValid(source: source, destination: destination)
        }
    }

    /// To a device that offloads checksums (`__ip_append_data`'s CHECKSUM_PARTIAL), a datagram
    /// that is one packet — sent per call or in a batch — carries only the pseudo-header sum,
    /// with the skb saying where the device completes it; a fragmented one carries the whole
    /// checksum (fragments cannot be offloaded), as does everything to a device that does not.
    @Test func aDeviceThatOffloadsChecksumsCompletesOnePacketDatagrams() throws {
        let lab = try ForwardLab(checksumOffload: true)
        try lab.stack.udp.open(1, local: SocketAddress(ForwardLab.routerB, 7), receiver: RecordingUDPReceiver())
        let to = SocketAddress(ForwardLab.hostB, 9000)
        try send(lab, Array(0..<100), from: 1, to: to)
        var batch = PacketBatch()
        let skb = lab.worker.cache.allocate()!
        skb.put(50)!.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 50)
        skb.udpDestination = to
        batch.append(skb)
        #expect(try lab.stack.udp.send(&batch, from: 1, worker: lab.worker).sent == 1)
        try send(lab, (0..<3000).map { UInt8(truncatingIfNeeded: $0) }, from: 1, to: to)
        var states: [ChecksumState] = []
        var places: [Int] = []
        var frames: [[UInt8]] = []
        var received = PacketBatch()
        while lab.wire1.pending() > 0 {
            _ = lab.wire1.receive(queue: 0, into: &received, max: 64, worker: lab.worker)
            for i in received.indices {
                states.append(received[i].checksumState)
                places.append(received[i].checksumStart - (received[i].data - received[i].head.pointee.bufferStart))
                frames.append(received[i].bytes)
            }
            lab.worker.cache.free(&received)
        }
        let sent = frames.map(SentIPv4.init)
        #expect(sent.count == 5 && states == [.partial, .partial, .none, .none, .none])   // 3008 B in three fragments
        #expect(Array(places.prefix(2)) == [34, 34])
        for packet in sent.prefix(2) {
            #expect(Self.isPartialAndCompletes(Array(packet.payload), source: ForwardLab.routerB, destination: ForwardLab.hostB))
        }
        var datagram = sent.dropFirst(2).flatMap { Array($0.payload) }
        let whole = datagram.withUnsafeMutableBytes { raw in
            UDPHeader(unchecked: raw.baseAddress!).isChecksumValid(source: ForwardLab.routerB, destination: ForwardLab.hostB)
        }
        #expect(datagram.count == 3008 && whole)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aBatchSendsInPlaceInOrderAndReturnsTheFirstFailure() throws {
        let lab = try ForwardLab()
        final class Echo: UDPReceiver, @unchecked Sendable {
            let udp: UDP
            var results: [(Int, SocketError?)] = []
            init(_ udp: UDP) { self.udp = udp }
            func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
                for i in datagrams.indices { datagrams[i].udpDestination = datagrams[i].udpRemote }
                results.append(try! udp.send(&datagrams, from: socket, worker: worker))
                return 0
            }
        }
        let echo = Echo(lab.stack.udp)
        try lab.stack.udp.open(3, local: SocketAddress(ForwardLab.routerA, 7), receiver: echo)
        lab.deliver(UDPReceiveTests.datagram(sourcePort: 4321, port: 7, payload: Array("ping".utf8)))
        let back = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(back.count == 1 && echo.results.first?.0 == 1 && echo.results.first?.1 == nil)
        #expect(back.first?.source == ForwardLab.routerA && back.first?.destination == ForwardLab.hostA)
        var udp = Array(back.first?.payload ?? [])
        let valid = udp.withUnsafeMutableBytes { raw in
            UDPHeader(unchecked: raw.baseAddress!).isChecksumValid(source: ForwardLab.routerA, destination: ForwardLab.hostA)
        }
        #expect(valid && udp.count == 12 && udp[0] == 0 && udp[1] == 7 && udp[2] == 0x10 && udp[3] == 0xE1)
        #expect(Array(udp[8...]) == Array("ping".utf8) && back.first?.headerChecksumIsValid == true)

        // A batch of the app's own skbs: fits, fragments (1400 B on MTU 1000), port 0, no route, fits.
        try lab.stack.apply("route add unreachable 198.19.200.0/24\nlink set eth1 mtu 1000")
        try lab.stack.udp.open(4, local: .any(port: 5000), receiver: RecordingUDPReceiver())
        let plan: [(Int, SocketAddress)] = [(10, SocketAddress(ForwardLab.hostB, 9)), (1400, SocketAddress(ForwardLab.hostB, 9)),
                                            (10, SocketAddress(ForwardLab.hostB, 0)), (10, SocketAddress(IPv4Address(198, 19, 200, 1), 9)),
                                            (20, SocketAddress(ForwardLab.hostB, 9))]
        let outDatagrams = lab.stack.udp.statistics[.outDatagrams]
        var batch = PacketBatch()
        for (n, (size, destination)) in plan.enumerated() {
            let skb = lab.worker.cache.allocate()!
            let bytes = skb.put(size)!
            bytes.initializeMemory(as: UInt8.self, repeating: UInt8(n), count: size)
            skb.udpDestination = destination
            batch.append(skb)
        }
        let result = try lab.stack.udp.send(&batch, from: 4, worker: lab.worker)
        #expect(batch.isEmpty && result.sent == 3 && result.error == .invalidDestination(SocketAddress(ForwardLab.hostB, 0)))
        let sent = lab.sent(on: lab.wire1).map(SentIPv4.init)
        // 10 B, then the 1400 B datagram's two fragments, then 20 B: in the order given.
        #expect(sent.map { $0.payload.count } == [18, 976, 432, 28])
        #expect(sent.first.map { Array(Array($0.payload)[8...]) } == [UInt8](repeating: 0, count: 10))
        #expect(sent.last.map { Array(Array($0.payload)[8...]) } == [UInt8](repeating: 4, count: 20))
        #expect(lab.stack.udp.statistics[.outDatagrams] == outDatagrams + 3)
        // An unbound id: nothing sent, the batch freed.
        let skb = lab.worker.cache.allocate()!
        batch.append(skb)
        #expect(throws: SocketError.notBound(99)) { try lab.stack.udp.send(&batch, from: 99, worker: lab.worker) }
        #expect(batch.isEmpty && lab.poolIsAtBaseline)
    }

    /// UDP_SEGMENT: 2500 bytes in 1000-byte segments leave as three datagrams (1000, 1000,
    /// 500) with their own lengths, valid checksums and consecutive identifications when the
    /// device cannot segment; whole (one GSO frame, the UDP length of the whole) when it can.
    /// A segment over the path MTU, or more than 64, is refused.
    @Test func udpSegmentSplitsAtSegmentBoundaries() throws {
        let lab = try ForwardLab()
        try lab.stack.udp.open(1, local: SocketAddress(ForwardLab.routerB, 5000),
                               sendOptions: UDPSocketOptions(segmentSize: 1000), receiver: RecordingUDPReceiver())
        let payload = (0..<2500).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try send(lab, payload, from: 1, to: SocketAddress(ForwardLab.hostB, 9))
        let segments = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(segments.map { $0.payload.count } == [1008, 1008, 508])
        var joined: [UInt8] = []
        for (k, segment) in segments.enumerated() {
            var udp = Array(segment.payload)
            #expect(Int(udp[4]) << 8 | Int(udp[5]) == udp.count && segment.headerChecksumIsValid)
            #expect(segment.frame[20] & 0x40 != 0 && segment.frame[20] & 0x20 == 0)   // DF, no MF
            let valid = udp.withUnsafeMutableBytes { raw in
                UDPHeader(unchecked: raw.baseAddress!).isChecksumValid(source: ForwardLab.routerB, destination: ForwardLab.hostB)
            }
            #expect(valid)
            let id = Int(segment.frame[18]) << 8 | Int(segment.frame[19])
            let first = Int(segments[0].frame[18]) << 8 | Int(segments[0].frame[19])
            #expect(id == (first + k) & 0xFFFF)
            joined += udp[8...]
        }
        #expect(joined == payload && lab.stack.udp.statistics[.outDatagrams] == 3)
        // A device that segments gets the GSO packet whole.
        lab.eth1.supportsGSO = true
        try send(lab, payload, from: 1, to: SocketAddress(ForwardLab.hostB, 9))
        let whole = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(whole.count == 1 && whole.first?.payload.count == 2508)
        #expect(whole.first.map { Int($0.frame[38]) << 8 | Int($0.frame[39]) } == 2508)
        // A payload within one segment is a plain datagram.
        try send(lab, Array(payload[..<900]), from: 1, to: SocketAddress(ForwardLab.hostB, 9))
        #expect(lab.sent(on: lab.wire1).map { SentIPv4($0).payload.count } == [908])
        lab.stack.udp.setOptions(1, UDPSocketOptions(segmentSize: 1473))
        #expect(throws: SocketError.invalidSegmentSize(1473, mtu: 1500)) {
            try send(lab, payload, from: 1, to: SocketAddress(ForwardLab.hostB, 9))
        }
        lab.stack.udp.setOptions(1, UDPSocketOptions(segmentSize: 100))
        #expect(throws: SocketError.invalidSegmentSize(100, mtu: 1500)) {
            try send(lab, [UInt8](repeating: 1, count: 6401), from: 1, to: SocketAddress(ForwardLab.hostB, 9))
        }
        #expect(lab.poolIsAtBaseline)
    }

    /// MSG_MORE / UDP_CORK (ip_append_data onto the cork): random pieces of random datagrams,
    /// all but the last sent with `more`, leave byte for byte as the one send of the whole
    /// does (fragments included; the identification and header checksum aside); under
    /// UDP_CORK nothing leaves until the cork is pulled; past 65507 bytes the pending datagram
    /// is dropped with EMSGSIZE; a close frees what was pending.
    @Test func corkedPiecesLeaveAsOneSendDoes() throws {
        var rng = SplitMix64(seed: 11)
        let lab = try ForwardLab()
        try lab.stack.udp.open(1, local: SocketAddress(ForwardLab.routerB, 5000), receiver: RecordingUDPReceiver())
        let destination = SocketAddress(ForwardLab.hostB, 9)
        func masked(_ frames: [[UInt8]]) -> [[UInt8]] {
            frames.map { frame in
                var frame = frame
                for i in [18, 19, 24, 25] { frame[i] = 0 }
                return frame
            }
        }
        for _ in 0..<20 {
            let size = 1 + Int(rng.next() % 6000)
            let payload = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            try send(lab, payload, from: 1, to: destination)
            let whole = masked(lab.sent(on: lab.wire1))
            var cuts = (0..<Int(rng.next() % 5)).map { _ in Int(rng.next() % UInt64(size + 1)) }.sorted()
            cuts = [0] + cuts + [size]
            for k in 0..<(cuts.count - 1) {
                let piece = Array(payload[cuts[k]..<cuts[k + 1]])
                try piece.withUnsafeBytes {
                    try lab.stack.udp.send($0, from: 1, to: k == 0 ? destination : nil, more: k < cuts.count - 2,
                                           worker: lab.worker)
                }
                if k < cuts.count - 2 { #expect(lab.sent(on: lab.wire1).isEmpty) }
            }
            #expect(masked(lab.sent(on: lab.wire1)) == whole, "size \(size) cuts \(cuts)")
        }
        // UDP_CORK: held until the cork is pulled.
        lab.stack.udp.setOptions(1, UDPSocketOptions(cork: true))
        for piece in [[1, 2], [3], [4, 5, 6]] as [[UInt8]] {
            try piece.withUnsafeBytes { try lab.stack.udp.send($0, from: 1, to: destination, more: false, worker: lab.worker) }
        }
        #expect(lab.sent(on: lab.wire1).isEmpty)
        lab.stack.udp.setOptions(1, UDPSocketOptions())
        try lab.stack.udp.pushPending(1, worker: lab.worker)
        #expect(lab.sent(on: lab.wire1).map { Array(SentIPv4($0).payload.dropFirst(8)) } == [[1, 2, 3, 4, 5, 6]])
        // Over 65507 bytes: EMSGSIZE, nothing pending, nothing sent.
        let big = [UInt8](repeating: 7, count: 40000)
        try big.withUnsafeBytes { try lab.stack.udp.send($0, from: 1, to: destination, more: true, worker: lab.worker) }
        #expect(throws: SocketError.messageTooLong(80000, mtu: 65535)) {
            try big.withUnsafeBytes { try lab.stack.udp.send($0, from: 1, more: true, worker: lab.worker) }
        }
        try lab.stack.udp.pushPending(1, worker: lab.worker)
        #expect(lab.sent(on: lab.wire1).isEmpty)
        // A close frees a pending datagram.
        try big.withUnsafeBytes { try lab.stack.udp.send($0, from: 1, to: destination, more: true, worker: lab.worker) }
        lab.stack.udp.close(1)
        #expect(lab.poolIsAtBaseline)
    }

    /// The async socket's `more`: two pieces wait on the worker for the third.
    @Test func theAsyncSocketCorksWithMore() async throws {
        let lab = try ForwardLab()
        lab.stack.attach([lab.worker])
        let socket = try UDPSocket(lab.stack, bind: SocketAddress(ForwardLab.routerB, 5000))
        try await socket.send([1, 2], to: SocketAddress(ForwardLab.hostB, 9), more: true)
        try await socket.send([3], more: true)
        lab.worker.tasklets.run(lab.worker)
        #expect(lab.sent(on: lab.wire1).isEmpty)
        try await socket.send([4])
        lab.worker.tasklets.run(lab.worker)
        #expect(lab.sent(on: lab.wire1).map { Array(SentIPv4($0).payload.dropFirst(8)) } == [[1, 2, 3, 4]])
        socket.setOptions(UDPSocketOptions(cork: true))
        try await socket.send([5], to: SocketAddress(ForwardLab.hostB, 9))
        lab.worker.tasklets.run(lab.worker)
        #expect(lab.sent(on: lab.wire1).isEmpty)
        socket.setOptions(UDPSocketOptions())
        lab.worker.tasklets.run(lab.worker)
        #expect(lab.sent(on: lab.wire1).map { Array(SentIPv4($0).payload.dropFirst(8)) } == [[5]])
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }

    /// A broadcast delivered to two run-to-completion echo sockets reaches each as a clone of
    /// one buffer: the first echo must not write its headers into the bytes the second reads
    /// (a shared skb takes the copying path), so both answer host A's port.
    @Test func aSharedDatagramIsNotRewrittenInPlace() throws {
        let lab = try ForwardLab()
        final class Echo: UDPReceiver, @unchecked Sendable {
            let udp: UDP
            init(_ udp: UDP) { self.udp = udp }
            func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
                for i in datagrams.indices { datagrams[i].udpDestination = datagrams[i].udpRemote }
                _ = try? udp.send(&datagrams, from: socket, worker: worker)
                return 0
            }
        }
        try lab.stack.udp.open(1, local: .any(port: 7), options: .reuseAddress, receiver: Echo(lab.stack.udp))
        try lab.stack.udp.open(2, local: .any(port: 7), options: .reuseAddress, receiver: Echo(lab.stack.udp))
        var bytes = [UInt8](repeating: 0, count: 8) + Array("bcast".utf8)
        bytes.withUnsafeMutableBytes { raw in
            UDPRepr(sourcePort: 4000, destinationPort: 7, payloadLength: 5)
                .emit(to: raw.baseAddress!, source: ForwardLab.hostA, destination: IPv4Address(198, 18, 1, 255))
        }
        lab.deliver(ForwardLab.frame(destination: IPv4Address(198, 18, 1, 255), payload: bytes, dontFragment: false,
                                     toMAC: MACAddress(bits: 0xFFFF_FFFF_FFFF)))
        let replies = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(replies.count == 2)
        for reply in replies {
            let udp = Array(reply.payload)
            #expect(reply.destination == ForwardLab.hostA && Int(udp[2]) << 8 | Int(udp[3]) == 4000)
            #expect(Array(udp[8...]) == Array("bcast".utf8))
        }
        #expect(lab.poolIsAtBaseline)
    }
}
