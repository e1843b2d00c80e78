import Testing
import Datapath
import DatapathCore
import DatapathWire
import Synchronization

final class RecordingRawReceiver: RawReceiver, @unchecked Sendable {
    var packets: [[UInt8]] = []
    func receive(_ packets: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
        for i in packets.indices { self.packets.append(Array(packets[i].payload)) }
        worker.cache.free(&packets)
        return 0
    }
}

/// Raw sockets on the router of `ForwardLab`: `raw_v4_input` copies before the protocol's
/// handler, the matching rules and ICMP_FILTER, `raw_sendmsg` with and without IP_HDRINCL.
@Suite struct RawSocketTests {
    /// Every raw ICMP socket whose address, peer and filter match gets a copy of an echo
    /// request — the whole packet, header first — and ICMP still answers it.
    @Test func matchingSocketsGetACopyBeforeTheProtocolHandler() throws {
        let lab = try ForwardLab()
        let any = RecordingRawReceiver(), boundA = RecordingRawReceiver(), boundB = RecordingRawReceiver()
        let filtered = RecordingRawReceiver(), otherPeer = RecordingRawReceiver(), udpOnly = RecordingRawReceiver()
        try lab.stack.raw.open(1, protocol: .icmp, receiver: any)
        try lab.stack.raw.open(2, protocol: .icmp, local: ForwardLab.routerA, receiver: boundA)
        try lab.stack.raw.open(3, protocol: .icmp, local: ForwardLab.routerB, receiver: boundB)
        try lab.stack.raw.open(4, protocol: .icmp, receiver: filtered)
        lab.stack.raw.setFilter(4, ICMPFilter(passing: [.echoReply, .destinationUnreachable]))
        try lab.stack.raw.open(5, protocol: .icmp, receiver: otherPeer)
        lab.stack.raw.connect(5, to: ForwardLab.hostB)
        try lab.stack.raw.open(6, protocol: .udp, receiver: udpOnly)
        #expect(throws: SocketError.addressNotAvailable(IPv4Address(198, 18, 9, 9))) {
            try lab.stack.raw.open(7, protocol: .icmp, local: IPv4Address(198, 18, 9, 9), receiver: any)
        }
        let request = ForwardLab.echoRequest(to: ForwardLab.routerA, sequence: 5)
        lab.deliver(request)
        #expect(any.packets == [Array(request[14...])] && boundA.packets == any.packets)
        #expect(boundB.packets.isEmpty && filtered.packets.isEmpty && otherPeer.packets.isEmpty && udpOnly.packets.isEmpty)
        let replies = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(replies.count == 1 && replies.first?.payload.first == 0)   // the stack's echo reply
        lab.stack.raw.close(1)
        lab.deliver(request)
        #expect(any.packets.count == 1 && boundA.packets.count == 2)
        _ = lab.sent(on: lab.wire0)
        #expect(lab.poolIsAtBaseline)
    }

    /// A protocol no handler serves: a raw socket for it takes the packet (no protocol
    /// unreachable, counted delivered); without one the stack answers protocol unreachable.
    @Test func aRawSocketServesAProtocolTheStackDoesNot() throws {
        let lab = try ForwardLab()
        let receiver = RecordingRawReceiver()
        try lab.stack.raw.open(1, protocol: IPProtocol(rawValue: 253), receiver: receiver)
        let frame = ForwardLab.frame(destination: ForwardLab.routerA, protocol: IPProtocol(rawValue: 253),
                                     payload: Array(1...40))
        let delivers = lab.stack.ipv4.statistics[.inDelivers]
        lab.deliver(frame)
        #expect(receiver.packets.map { Array($0[20...]) } == [Array(1...40)])
        #expect(lab.sent(on: lab.wire0).isEmpty && lab.stack.ipv4.statistics[.inDelivers] == delivers + 1)
        lab.stack.raw.close(1)
        lab.deliver(frame)
        let unreachable = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(unreachable.count == 1 && unreachable.first?.payload.first == 3 && unreachable.first.map { Array($0.payload)[1] } == 2)
        #expect(lab.poolIsAtBaseline)
    }

    /// raw_sendmsg: the stack builds the header with the socket's protocol and the route's
    /// source; longer than the path it fragments, or with `.do` refuses; IP_HDRINCL packets are
    /// checked, completed (length, id, source, checksum) and must fit the path.
    @Test func sendingBuildsOrChecksTheHeader() throws {
        let lab = try ForwardLab()
        try lab.stack.raw.open(1, protocol: IPProtocol(rawValue: 253), receiver: RecordingRawReceiver())
        func send(_ bytes: [UInt8], to destination: IPv4Address = ForwardLab.hostB) throws {
            try bytes.withUnsafeBytes { try lab.stack.raw.send($0, from: 1, to: destination, worker: lab.worker) }
        }
        try send(Array(0..<100))
        var sent = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(sent.count == 1 && sent.first?.protocolNumber == 253 && sent.first?.source == ForwardLab.routerB)
        #expect(sent.first.map { Array($0.payload) } == Array(0..<100) && sent.first?.headerChecksumIsValid == true)
        try send([UInt8](repeating: 7, count: 3000))
        sent = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(sent.map { $0.payload.count } == [1480, 1480, 40])
        lab.stack.raw.setOptions(1, RawSocketOptions(pathMTUDiscovery: .do))
        #expect(throws: SocketError.messageTooLong(3000, mtu: 1500)) { try send([UInt8](repeating: 7, count: 3000)) }
        #expect(throws: SocketError.notConnected) {
            try [1].withUnsafeBytes { try lab.stack.raw.send($0, from: 1, worker: lab.worker) }
        }

        // Broadcast only with SO_BROADCAST; a group with IP_MULTICAST_IF and TTL 1.
        let eth1 = lab.stack.link(named: "eth1")!.device.ifindex
        lab.stack.raw.setOptions(1, RawSocketOptions(multicastInterface: eth1))
        #expect(throws: SocketError.broadcastNotPermitted(IPv4Address(198, 18, 2, 255))) {
            try send([1], to: IPv4Address(198, 18, 2, 255))
        }
        try send([2], to: IPv4Address(239, 1, 1, 1))
        lab.stack.raw.setOptions(1, RawSocketOptions(broadcast: true))
        try send([3], to: IPv4Address(198, 18, 2, 255))
        sent = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(sent.map(\.ttl) == [1, 64] && sent.first?.destination == IPv4Address(239, 1, 1, 1))
        #expect(sent.last?.destinationMAC == MACAddress(bits: 0xFFFF_FFFF_FFFF))

        lab.stack.raw.setOptions(1, RawSocketOptions(headerIncluded: true))
        var packet = [UInt8](repeating: 0, count: 20) + Array("hdrincl".utf8)
        packet[0] = 0x45; packet[8] = 9; packet[9] = 254   // TTL 9, protocol 254; length, id, source, checksum 0
        packet[16] = 198; packet[17] = 18; packet[18] = 2; packet[19] = 2
        try send(packet)
        sent = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(sent.count == 1 && sent.first?.protocolNumber == 254 && sent.first?.source == ForwardLab.routerB)
        #expect(sent.first?.headerChecksumIsValid == true && sent.first.map { Array($0.payload) } == Array("hdrincl".utf8))
        #expect(sent.first.map { Int($0.frame[16]) << 8 | Int($0.frame[17]) } == 27 && sent.first?.frame[22] == 9)
        #expect(sent.first.map { $0.frame[18] != 0 || $0.frame[19] != 0 } == true)   // an identification was given
        #expect(throws: SocketError.invalidPacket("shorter than an IPv4 header (10 bytes)")) { try send(Array(packet[..<10])) }
        var badLength = packet
        badLength[0] = 0x4F   // a 60-byte header in a 27-byte packet
        #expect(throws: SocketError.invalidPacket("not an IPv4 header of 20 bytes or more within the packet")) { try send(badLength) }
        #expect(throws: SocketError.messageTooLong(1600, mtu: 1500)) {
            try send(Array(packet[..<20]) + [UInt8](repeating: 0, count: 1580))
        }
        #expect(lab.poolIsAtBaseline)
    }

    /// The async socket: a copy of a delivered echo request reaches `receive`; `send` crosses to
    /// the worker; a full receive buffer drops `.rawReceiveBufferFull`; close unbinds.
    @Test func theAsyncSocketReceivesAndSends() async throws {
        let lab = try ForwardLab()
        lab.stack.attach([lab.worker])
        let socket = try RawSocket(lab.stack, protocol: .icmp, receiveBufferSize: 2048)
        let request = ForwardLab.echoRequest(to: ForwardLab.routerA, sequence: 1)
        lab.deliver(request)
        let packet = try #require(try socket.tryReceive())
        #expect(packet.source == ForwardLab.hostA && packet.destination == ForwardLab.routerA)
        #expect(packet.packet == Array(request[14...]) && Array(packet.payload.prefix(1)) == [8])
        // 2048 bytes hold one copy (true size): of three, two are dropped.
        lab.deliver([request, request, request])
        #expect(lab.worker.drops[.rawReceiveBufferFull] == 2)
        #expect(try socket.tryReceive() != nil && (try socket.tryReceive()) == nil)
        try await socket.send([8, 0, 0xF7, 0xFF, 0, 0, 0, 0], to: ForwardLab.hostB)
        #expect(lab.sent(on: lab.wire1).isEmpty)
        lab.worker.tasklets.run(lab.worker)
        let sent = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(sent.count == 1 && sent.first?.protocolNumber == 1 && Array(sent.first?.payload ?? []) == [8, 0, 0xF7, 0xFF, 0, 0, 0, 0])
        socket.close()
        lab.deliver(request)
        _ = lab.sent(on: lab.wire0)
        #expect(lab.poolIsAtBaseline)
    }
}

/// The loopback device: what the stack sends to its own addresses comes back through lo.
@Suite struct LoopbackTests {
    /// Runs what lo holds through the stack until it is empty.
    static func pollLoopback(_ lab: ForwardLab) {
        let lo = lab.stack.link(named: "lo")!.device as! LoopbackDevice
        var batch = PacketBatch()
        while lo.pending() > 0 {
            _ = lo.receive(queue: 0, into: &batch, max: 256, worker: lab.worker)
            lab.stack.core.netifReceiveSkb(&batch, worker: lab.worker)
        }
    }

    /// A UDP datagram to one of our addresses reaches the socket bound there, from that
    /// address, and nothing leaves on a wire; an echo request to ourselves is answered through
    /// lo (a raw socket sees the request and the reply); lo is ifindex 1.
    @Test func trafficToOurOwnAddressesComesBackThroughLo() throws {
        let lab = try ForwardLab()
        #expect(lab.stack.link(named: "lo")?.device.ifindex == 1)
        let receiver = RecordingUDPReceiver()
        try lab.stack.udp.open(1, local: SocketAddress(ForwardLab.routerB, 7000), receiver: receiver)
        try lab.stack.udp.open(2, local: .any(), receiver: RecordingUDPReceiver())
        try ([1, 2, 3] as [UInt8]).withUnsafeBytes {
            try lab.stack.udp.send($0, from: 2, to: SocketAddress(ForwardLab.routerB, 7000), worker: lab.worker)
        }
        Self.pollLoopback(lab)
        #expect(receiver.payloads == [[1, 2, 3]])
        #expect(lab.sent(on: lab.wire0).isEmpty && lab.sent(on: lab.wire1).isEmpty)

        let raw = RecordingRawReceiver()
        try lab.stack.raw.open(3, protocol: .icmp, receiver: raw)
        let request: [UInt8] = [8, 0, 0xF7, 0xFE, 0, 1, 0, 0]   // checksum of 08 00 .. 00 01 00 00
        try request.withUnsafeBytes { try lab.stack.raw.send($0, from: 3, to: ForwardLab.routerA, worker: lab.worker) }
        Self.pollLoopback(lab)
        Self.pollLoopback(lab)
        #expect(raw.packets.map { $0[20] } == [8, 0])   // the request, then the stack's reply
        #expect(raw.packets.allSatisfy { IPv4Address($0[12], $0[13], $0[14], $0[15]) == ForwardLab.routerA })
        #expect(lab.sent(on: lab.wire0).isEmpty)
        lab.stack.udp.close(1)
        lab.stack.udp.close(2)
        lab.stack.raw.close(3)
        #expect(lab.poolIsAtBaseline)
    }
}
