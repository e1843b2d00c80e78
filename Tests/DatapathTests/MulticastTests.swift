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
    /// An IGMP query frame from host A to 224.0.0.1 (or the group for a group-specific one):
    /// 8 bytes for v1/v2 (`maxResponse` 0: v1), 12 for v3.
    static func query(group: IPv4Address = .zero, maxResponse: UInt8, v3: Bool = false) -> [UInt8] {
        var query: [UInt8] = [0x11, maxResponse, 0, 0] + group.bytes + (v3 ? [0, 0, 0, 0] : [])
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(query, count: query.count))
        query[2] = UInt8(sum >> 8); query[3] = UInt8(sum & 0xFF)
        let destination = group.isZero ? IPv4Address(224, 0, 0, 1) : group
        let low = destination.hostOrder & 0x7F_FFFF
        return ForwardLab.frame(source: ForwardLab.hostA, destination: destination, protocol: .igmp, ttl: 1, payload: query,
                                toMAC: MACAddress(0x01, 0x00, 0x5E, UInt8(low >> 16), UInt8(low >> 8 & 0xFF), UInt8(low & 0xFF)))
    }

    /// (type, group, IP destination) of each IGMPv1/v2 message among `frames`.
    static func olderMessages(_ frames: [[UInt8]]) -> [(UInt8, IPv4Address, IPv4Address)] {
        frames.map(SentIPv4.init).filter { $0.protocolNumber == 2 && $0.totalLength - $0.headerLength == 8 }.map { ip in
            let m = Array(ip.frame[(14 + ip.headerLength)...])
            return (m[0], IPv4Address(m[4], m[5], m[6], m[7]), ip.destination)
        }
    }

    /// RFC 3376 §7.2.1: a v2 query puts the interface in IGMPv2 mode — each group answered
    /// by a v2 report to the group (Router Alert, TTL 1, a valid checksum), a group-specific
    /// query for that group only, a leave as a v2 leave to 224.0.0.2; a v1 query makes it v1
    /// (reports 0x12, no leave); 260 s after the last older query it is v3 again. A general
    /// v3 query of 300 groups is answered in reports that each fit the MTU.
    @Test func olderQueriersGetReportsInTheirVersionAndLargeAnswersAreSplit() throws {
        let lab = try Self.lab()
        let eth0 = lab.stack.link(named: "eth0")!.device.ifindex
        let socket = try UDPSocket(lab.stack, bind: .any(port: 5000))
        let other = IPv4Address(239, 1, 2, 4)
        try socket.join(group: Self.group, device: eth0)
        try socket.join(group: other, device: eth0)
        lab.worker.tasklets.run(lab.worker)
        #expect(lab.sent(on: lab.wire0).compactMap(Self.reportRecords).count == 2)   // v3 joins

        lab.deliver(Self.query(maxResponse: 100))
        #expect(lab.stack.igmp.version(ifindex: eth0, now: lab.clock.now()) == 2)
        let answers = lab.sent(on: lab.wire0)
        let v2 = Self.olderMessages(answers)
        #expect(v2.count == 2 && v2.allSatisfy { $0.0 == 0x16 && $0.1 == $0.2 })
        #expect(Set(v2.map(\.1)) == [Self.group, other])
        #expect(answers.map(SentIPv4.init).allSatisfy {
            $0.ttl == 1 && $0.headerLength == 24 && $0.options == [0x94, 4, 0, 0] && $0.headerChecksumIsValid
            && InternetChecksum.fold(InternetChecksum.sum(Array($0.payload), count: 8)) == 0xFFFF
        })
        lab.deliver(Self.query(group: other, maxResponse: 100))
        #expect(Self.olderMessages(lab.sent(on: lab.wire0)).map(\.1) == [other])
        socket.leave(group: other, device: eth0)
        lab.worker.tasklets.run(lab.worker)
        let leave = Self.olderMessages(lab.sent(on: lab.wire0))
        #expect(leave.count == 1 && leave.first?.0 == 0x17 && leave.first?.1 == other
                && leave.first?.2 == IPv4Address(224, 0, 0, 2))

        lab.deliver(Self.query(maxResponse: 0))   // IGMPv1
        #expect(Self.olderMessages(lab.sent(on: lab.wire0)).map { [$0.0] + $0.1.bytes } == [[0x12] + Self.group.bytes])
        try socket.join(group: other, device: eth0)
        socket.leave(group: other, device: eth0)
        lab.worker.tasklets.run(lab.worker)
        #expect(Self.olderMessages(lab.sent(on: lab.wire0)).map(\.0) == [0x12])   // the join; no v1 leave

        lab.clock.advance(by: .seconds(261))
        #expect(lab.stack.igmp.version(ifindex: eth0, now: lab.clock.now()) == 3)
        let many = (0..<300).map { IPv4Address(239, 2, UInt8($0 >> 8), UInt8($0 & 0xFF)) }
        for group in many { try socket.join(group: group, device: eth0) }
        lab.worker.tasklets.run(lab.worker)
        _ = lab.sent(on: lab.wire0)
        lab.deliver(Self.query(maxResponse: 100, v3: true))
        let reports = lab.sent(on: lab.wire0)
        #expect(reports.count == 2 && reports.allSatisfy { $0.count <= 14 + 1500 })
        let records = reports.compactMap(Self.reportRecords).flatMap { $0 }
        #expect(records.count == 301 && records.allSatisfy { $0.0 == 2 })
        #expect(Set(records.map(\.1)) == Set(many + [Self.group]))
        socket.close()
        lab.worker.tasklets.run(lab.worker)
        _ = lab.sent(on: lab.wire0)
        #expect(lab.poolIsAtBaseline)
    }
}
