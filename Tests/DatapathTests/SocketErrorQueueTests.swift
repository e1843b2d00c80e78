import Testing
import Datapath
import DatapathCore
import DatapathWire
#if canImport(Glibc)
import Glibc
#endif

/// ICMP errors back to sockets (`__udp4_lib_err`, `raw_err`) and `IP_RECVERR`'s error queue,
/// on `ForwardLab`'s router (host B 198.18.2.2 behind eth1), its worker attached.
@Suite struct SocketErrorQueueTests {
    static func lab() throws -> ForwardLab {
        let lab = try ForwardLab()
        lab.stack.attach([lab.worker])
        return lab
    }

    /// Sends `payload` from `socket` to host B port 9 and returns the IPv4 packet that left.
    static func sendToHostB(_ lab: ForwardLab, _ socket: UDPSocket, _ payload: [UInt8]) async throws -> [UInt8] {
        try await socket.send(payload, to: SocketAddress(ForwardLab.hostB, 9))
        _ = lab.worker.tasklets.run(lab.worker)
        let sent = lab.sent(on: lab.wire1)
        try #require(sent.count == 1)
        return Array(sent[0][14...])
    }

    /// An unconnected socket hears of nothing without IP_RECVERR; with it, a port unreachable
    /// is its pending error once and a message on the error queue with Linux's errno, the
    /// ICMP type and code, the offender, the destination and the quoted payload.
    @Test func recverrQueuesWhatAnUnconnectedSocketSent() async throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: SocketAddress(ForwardLab.routerB, 5004))
        let peer = SocketAddress(ForwardLab.hostB, 9)
        var packet = try await Self.sendToHostB(lab, socket, [1, 2, 3])
        lab.deliver(ForwardLab.icmpErrorFromHostB(code: 3, quoting: packet), on: lab.eth1)
        #expect(try socket.tryReceive() == nil && socket.receiveError() == nil)

        socket.setOptions(UDPSocketOptions(receiveErrors: true))
        packet = try await Self.sendToHostB(lab, socket, [4, 5, 6, 7])
        lab.deliver(ForwardLab.icmpErrorFromHostB(code: 3, quoting: packet), on: lab.eth1)
        #expect(throws: SocketError.connectionRefused(peer)) { try socket.tryReceive() }
        #expect(try socket.tryReceive() == nil)   // thrown once
        let message = try #require(socket.receiveError())
        #expect(message.error == .connectionRefused(peer) && message.errno == .connectionRefused && message.isHard)
        #expect(message.origin == .icmp && message.type == 3 && message.code == 3)
        #expect(message.offender == ForwardLab.hostB && message.destination == peer)
        #expect(message.payload == [4, 5, 6, 7])
        #expect(socket.receiveError() == nil)
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }

    /// Soft errors (time exceeded, host unreachable) reach a socket only under IP_RECVERR,
    /// connected or not; a parameter problem (EPROTO) is hard: a connected socket gets it
    /// without. The offender is the router that sent it. Closing empties the queue.
    @Test func softErrorsNeedRecverrAndHardOnesReachAConnectedSocket() async throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: SocketAddress(ForwardLab.routerB, 5005))
        let peer = SocketAddress(ForwardLab.hostB, 9)
        try socket.connect(to: peer)
        var packet = try await Self.sendToHostB(lab, socket, [1])
        lab.deliver(ForwardLab.icmpErrorFromHostB(type: 11, code: 0, quoting: packet), on: lab.eth1)
        lab.deliver(ForwardLab.icmpErrorFromHostB(code: 1, quoting: packet), on: lab.eth1)
        #expect(try socket.tryReceive() == nil)
        lab.deliver(ForwardLab.icmpErrorFromHostB(type: 12, code: 0, quoting: packet), on: lab.eth1)
        #expect(throws: SocketError.protocolError(ForwardLab.hostB)) { try socket.tryReceive() }
        #expect(socket.receiveError() == nil)   // nothing queued without IP_RECVERR

        socket.setOptions(UDPSocketOptions(receiveErrors: true))
        packet = try await Self.sendToHostB(lab, socket, [2])
        lab.deliver(ForwardLab.icmpErrorFromHostB(type: 11, code: 0, quoting: packet), on: lab.eth1)
        lab.deliver(ForwardLab.icmpErrorFromHostB(code: 0, quoting: packet), on: lab.eth1)
        let exceeded = try #require(socket.receiveError())
        #expect(exceeded.errno == .noRouteToHost && !exceeded.isHard && exceeded.type == 11)
        // Reading the queue leaves the next message's error pending, as sk_err.
        #expect(throws: SocketError.unreachable(ForwardLab.hostB)) { try socket.tryReceive() }
        let network = try #require(socket.receiveError())
        #expect(network.errno == .networkUnreachable && network.code == 0 && network.payload == [2])
        lab.deliver(ForwardLab.icmpErrorFromHostB(code: 0, quoting: packet), on: lab.eth1)
        socket.close()
        #expect(socket.receiveError() == nil)
        #expect(lab.poolIsAtBaseline)
    }

    /// EMSGSIZE met sending with IP_PMTUDISC_DO: the pending error, and under IP_RECVERR a
    /// local message with the path MTU (`ip_local_error`). Fragmentation needed from a router
    /// is EMSGSIZE with the next-hop MTU in `info`.
    @Test func messageTooLongIsALocalErrorAndFragmentationNeededAnICMPOne() async throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: SocketAddress(ForwardLab.routerB, 5006),
                                   sendOptions: UDPSocketOptions(pathMTUDiscovery: .do, receiveErrors: true))
        let peer = SocketAddress(ForwardLab.hostB, 9)
        try socket.connect(to: peer)
        try await socket.send([UInt8](repeating: 7, count: 2000))
        _ = lab.worker.tasklets.run(lab.worker)
        #expect(lab.sent(on: lab.wire1).isEmpty)
        #expect(throws: SocketError.messageTooLong(2000, mtu: 1500)) { try socket.tryReceive() }
        let local = try #require(socket.receiveError())
        #expect(local.origin == .local && local.errno == .messageTooLong && local.info == 1500 && local.offender == .zero)
        #expect(local.destination == peer)

        let packet = try await Self.sendToHostB(lab, socket, [UInt8](repeating: 8, count: 1200))
        lab.deliver(ForwardLab.icmpErrorFromHostB(code: 4, info: 1100, quoting: Array(packet.prefix(28 + 64))),
                    on: lab.eth1)
        let fragmentation = try #require(socket.receiveError())
        #expect(fragmentation.error == .messageTooLong(1200, mtu: 1100) && fragmentation.info == 1100)
        #expect(fragmentation.payload == [UInt8](repeating: 8, count: 64) && fragmentation.isHard)
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }

    /// raw_err: an ICMP raw socket under IP_RECVERR hears of a host unreachable about its echo
    /// request, the quote from after the IP header; an unconnected one without it does not.
    @Test func aRawSocketWithRecverrGetsErrorsAboutItsPackets() async throws {
        let lab = try Self.lab()
        let quiet = try RawSocket(lab.stack, protocol: .icmp)
        let socket = try RawSocket(lab.stack, protocol: .icmp, options: RawSocketOptions(receiveErrors: true))
        let request: [UInt8] = [8, 0, 0xF7, 0xFE, 0, 1, 0, 0]
        try await socket.send(request, to: ForwardLab.hostB)
        _ = lab.worker.tasklets.run(lab.worker)
        let sent = lab.sent(on: lab.wire1)
        try #require(sent.count == 1)
        lab.deliver(ForwardLab.icmpErrorFromHostB(code: 1, quoting: Array(sent[0][14...])), on: lab.eth1)
        let message = try #require(socket.receiveError())
        #expect(message.errno == .noRouteToHost && message.type == 3 && message.code == 1 && !message.isHard)
        #expect(message.offender == ForwardLab.hostB && message.destination == SocketAddress(ForwardLab.hostB, 0))
        #expect(message.payload == request)
        #expect(quiet.receiveError() == nil)
        // Both still read the ICMP error itself as a raw ICMP packet (reading the error queue
        // cleared the pending error, as it clears sk_err).
        #expect(try quiet.tryReceive()?.packet.dropFirst(20).first == 3)
        #expect(try socket.tryReceive()?.packet.dropFirst(20).first == 3)
        quiet.close()
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }
}
