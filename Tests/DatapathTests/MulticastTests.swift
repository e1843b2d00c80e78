import Testing
import Datapath
import DatapathCore
import DatapathWire

/// Broadcast and multicast on the router of `ForwardLab` (eth0 198.18.1.1/24 on wire0, eth1
/// 198.18.2.1/24 on wire1), its worker attached: delivery to every matching socket, group
/// membership with IGMPv3 reports, SO_BROADCAST, IP_MULTICAST_IF/TTL.
@Suite struct MulticastTests {
    static let group = IPv4Address(239, 1, 2, 3)

    static func lab() throws -> ForwardLab {
        let lab = try ForwardLab()
        lab.stack.attach([lab.worker])
        return lab
    }

    /// A UDP datagram from host A to `destination`:`port`, to `toMAC`.
    static func datagram(to destination: IPv4Address, port: UInt16, toMAC: MACAddress, payload: [UInt8] = [1, 2, 3]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8) + payload
        bytes.withUnsafeMutableBytes { raw in
            UDPRepr(sourcePort: 4000, destinationPort: port, payloadLength: payload.count)
                .emit(to: raw.baseAddress!, source: ForwardLab.hostA, destination: destination)
        }
        return ForwardLab.frame(destination: destination, protocol: .udp, payload: bytes, dontFragment: false, toMAC: toMAC)
    }

    /// The IGMPv3 report records (type, group) of a frame, or nil when it is not one.
    static func reportRecords(_ frame: [UInt8]) -> [(UInt8, IPv4Address)]? {
        let ip = SentIPv4(frame)
        guard ip.protocolNumber == 2, ip.destination == IPv4Address(224, 0, 0, 22) else { return nil }
        let message = Array(frame[(14 + ip.headerLength)...])
        guard message[0] == 0x22 else { return nil }
        let count = Int(message[6]) << 8 | Int(message[7])
        return (0..<count).map { n in
            (message[8 + 8 * n], IPv4Address(message[12 + 8 * n], message[13 + 8 * n], message[14 + 8 * n], message[15 + 8 * n]))
        }
    }

    /// Two sockets on port 5000 get every datagram to a group one of them joined (Linux's
    /// IP_MULTICAST_ALL default) and to the subnet's broadcast address; a group nobody joined
    /// is not delivered; the join and the leave are reported with IGMPv3, a general query is
    /// answered; the frames' MAC is the group's.
    @Test func groupsAndBroadcastsReachEveryMatchingSocket() async throws {
        let lab = try Self.lab()
        let eth0 = lab.stack.link(named: "eth0")!.device.ifindex
        let a = try UDPSocket(lab.stack, bind: .any(port: 5000), options: .reuseAddress)
        let b = try UDPSocket(lab.stack, bind: .any(port: 5000), options: .reuseAddress)
        let other = try UDPSocket(lab.stack, bind: .any(port: 5001))
        #expect(throws: SocketError.notMulticast(ForwardLab.hostA)) { try a.join(group: ForwardLab.hostA, device: eth0) }
        try a.join(group: Self.group, device: eth0)
        #expect(lab.stack.igmp.isMember(Self.group, ifindex: eth0))
        lab.worker.tasklets.run(lab.worker)
        let join = lab.sent(on: lab.wire0)
        #expect(join.count == 1)
        let report = try #require(join.first)
        #expect(Self.reportRecords(report).map { $0.map(\.0) } == [4] && Self.reportRecords(report)?.first?.1 == Self.group)
        let reportIP = SentIPv4(report)
        #expect(reportIP.ttl == 1 && reportIP.headerLength == 24 && reportIP.headerChecksumIsValid)
        #expect(Array(report[34..<38]) == [0x94, 0x04, 0, 0])   // Router Alert
        #expect(reportIP.destinationMAC == MACAddress(0x01, 0x00, 0x5E, 0x00, 0x00, 0x16) && reportIP.source == ForwardLab.routerA)

        lab.deliver(Self.datagram(to: Self.group, port: 5000, toMAC: MACAddress(0x01, 0x00, 0x5E, 0x01, 0x02, 0x03)))
        lab.deliver(Self.datagram(to: IPv4Address(198, 18, 1, 255), port: 5000, toMAC: MACAddress(bits: 0xFFFF_FFFF_FFFF),
                                  payload: [4]))
        lab.deliver(Self.datagram(to: IPv4Address(239, 9, 9, 9), port: 5000, toMAC: MACAddress(0x01, 0x00, 0x5E, 0x09, 0x09, 0x09)))
        for socket in [a, b] {
            #expect(try socket.tryReceive()?.payload == [1, 2, 3])
            let broadcast = try socket.tryReceive()
            #expect(broadcast?.payload == [4] && broadcast?.local == SocketAddress(IPv4Address(198, 18, 1, 255), 5000))
            #expect(try socket.tryReceive() == nil)
        }
        #expect(try other.tryReceive() == nil)
        #expect(lab.stack.udp.statistics[.inDatagrams] == 4 && lab.stack.udp.statistics[.noPorts] == 0)
        #expect(lab.worker.drops[.ipNoRoute] == 1)   // 239.9.9.9: not joined
        #expect(lab.sent(on: lab.wire0).isEmpty)       // no port unreachable for a group or a broadcast

        // A general query (to 224.0.0.1) is answered with the groups of the device.
        var query: [UInt8] = [0x11, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        let sum = ~InternetChecksum.fold(query.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: $0.count) })
        query[2] = UInt8(sum >> 8); query[3] = UInt8(sum & 0xFF)
        lab.deliver(ForwardLab.frame(source: ForwardLab.hostA, destination: IPv4Address(224, 0, 0, 1), protocol: .igmp, ttl: 1,
                                     payload: query, toMAC: MACAddress(0x01, 0x00, 0x5E, 0x00, 0x00, 0x01)))
        let answer = lab.sent(on: lab.wire0)
        #expect(answer.count == 1 && answer.first.flatMap(Self.reportRecords).map { $0.map(\.0) } == [2])
        #expect(lab.stack.igmp.counts.queriesReceived == 1)

        a.close()
        #expect(!lab.stack.igmp.isMember(Self.group, ifindex: eth0))
        lab.worker.tasklets.run(lab.worker)
        let leave = lab.sent(on: lab.wire0)
        #expect(leave.count == 1 && leave.first.flatMap(Self.reportRecords).map { $0.map(\.0) } == [3])
        lab.deliver(Self.datagram(to: Self.group, port: 5000, toMAC: MACAddress(0x01, 0x00, 0x5E, 0x01, 0x02, 0x03)))
        #expect(try b.tryReceive() == nil)
        b.close()
        other.close()
        _ = lab.sent(on: lab.wire0)
        #expect(lab.poolIsAtBaseline)
    }

    /// Sending to a broadcast address needs SO_BROADCAST (EACCES otherwise) and leaves to
    /// ff:ff:ff:ff:ff:ff; a group leaves by IP_MULTICAST_IF with IP_MULTICAST_TTL (default 1)
    /// to the group's MAC; no device for a group is no route.
    @Test func broadcastAndMulticastSends() throws {
        let lab = try ForwardLab()
        let eth1 = lab.stack.link(named: "eth1")!.device.ifindex
        try lab.stack.udp.open(1, local: .any(port: 7000), receiver: RecordingUDPReceiver())
        func send(to destination: SocketAddress) throws {
            try [9, 9].withUnsafeBytes { try lab.stack.udp.send($0, from: 1, to: destination, worker: lab.worker) }
        }
        let subnet = SocketAddress(IPv4Address(198, 18, 2, 255), 6000)
        #expect(throws: SocketError.broadcastNotPermitted(subnet.address)) { try send(to: subnet) }
        #expect(throws: SocketError.noRoute(Self.group)) { try send(to: SocketAddress(Self.group, 6000)) }
        lab.stack.udp.setOptions(1, UDPSocketOptions(broadcast: true, multicastInterface: eth1))
        try send(to: subnet)
        try send(to: SocketAddress(IPv4Address(255, 255, 255, 255), 6000))
        try send(to: SocketAddress(Self.group, 6000))
        let sent = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(sent.count == 3)
        #expect(sent.prefix(2).allSatisfy { $0.destinationMAC == MACAddress(bits: 0xFFFF_FFFF_FFFF) && $0.source == ForwardLab.routerB })
        #expect(sent.last?.destinationMAC == MACAddress(0x01, 0x00, 0x5E, 0x01, 0x02, 0x03))
        #expect(sent.last?.ttl == 1 && sent.last?.destination == Self.group && sent.first?.ttl == 64)
        lab.stack.udp.setOptions(1, UDPSocketOptions(multicastInterface: eth1, multicastTTL: 8))
        try send(to: SocketAddress(Self.group, 6000))
        #expect(lab.sent(on: lab.wire1).map { SentIPv4($0).ttl } == [8])
        // The limited broadcast came back through lo too; nobody is bound to 6000 here.
        LoopbackTests.pollLoopback(lab)
        #expect(lab.stack.udp.statistics[.ignoredMulti] == 1 && lab.stack.udp.statistics[.noPorts] == 0)
        #expect(lab.sent(on: lab.wire1).isEmpty)   // and no port unreachable about a broadcast
        #expect(lab.poolIsAtBaseline)
    }

    /// IP_MULTICAST_LOOP (`ip_mc_output`): a datagram to a group joined on the device it
    /// leaves by comes back to this host's members too (on by default), as received on that
    /// device; with the option off only the wire gets it; TTL 0 keeps it to this host; a
    /// limited broadcast always comes back, to the sockets bound to its port.
    @Test func ownGroupSendsAndLimitedBroadcastsComeBackToThisHost() throws {
        let lab = try Self.lab()
        let eth0 = lab.stack.link(named: "eth0")!.device.ifindex
        let member = try UDPSocket(lab.stack, bind: .any(port: 5000), options: .reuseAddress)
        try member.join(group: Self.group, device: eth0)
        lab.worker.tasklets.run(lab.worker)
        #expect(lab.sent(on: lab.wire0).count == 1)   // the join's report
        try lab.stack.udp.open(1, local: .any(port: 7000), receiver: RecordingUDPReceiver())
        func send(_ byte: UInt8, to address: IPv4Address, options: UDPSocketOptions) throws {
            lab.stack.udp.setOptions(1, options)
            try [byte].withUnsafeBytes {
                try lab.stack.udp.send($0, from: 1, to: SocketAddress(address, 5000), worker: lab.worker)
            }
            LoopbackTests.pollLoopback(lab)
        }
        try send(1, to: Self.group, options: UDPSocketOptions(multicastInterface: eth0))
        let looped = try member.tryReceive()
        #expect(looped?.payload == [1] && looped?.remote == SocketAddress(ForwardLab.routerA, 7000))
        #expect(looped?.local == SocketAddress(Self.group, 5000) && looped?.interfaceIndex == eth0)
        #expect(lab.sent(on: lab.wire0).map { SentIPv4($0).destination } == [Self.group])

        try send(2, to: Self.group, options: UDPSocketOptions(multicastInterface: eth0, multicastLoop: false))
        #expect(try member.tryReceive() == nil)
        #expect(lab.sent(on: lab.wire0).count == 1)

        try send(3, to: Self.group, options: UDPSocketOptions(multicastInterface: eth0, multicastTTL: 0))
        #expect(try member.tryReceive()?.payload == [3])
        #expect(lab.sent(on: lab.wire0).isEmpty)

        try send(4, to: IPv4Address(255, 255, 255, 255), options: UDPSocketOptions(broadcast: true, multicastInterface: eth0))
        let broadcast = try member.tryReceive()
        #expect(broadcast?.payload == [4] && broadcast?.local == SocketAddress(IPv4Address(255, 255, 255, 255), 5000))
        #expect(lab.sent(on: lab.wire0).map { SentIPv4($0).destinationMAC } == [MACAddress(bits: 0xFFFF_FFFF_FFFF)])
        #expect(try member.tryReceive() == nil)
        member.close()
        lab.stack.udp.close(1)
        lab.worker.tasklets.run(lab.worker)
        _ = lab.sent(on: lab.wire0)
        #expect(lab.poolIsAtBaseline)
    }
}
