import Datapath
import DatapathCore
import DatapathWire
import Foundation
import Testing

/// Multicast and broadcast between kernel sockets and the stack's (in process, on AF_PACKET),
/// in namespaces this suite makes (198.18.0.0/15 and 239.0.0.0/8 groups on the test link only).
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct MulticastInteropTests {
    /// The stack joins 239.1.2.3 (a packet socket on the kernel's side sees the IGMPv3 report
    /// to 01:00:5e:00:00:16), receives
    /// what a kernel sender sends to the group and to the subnet's broadcast address, and sends
    /// to the group out of eth0 — a kernel socket that joined it receives that.
    @Test func theStackJoinsReceivesAndSendsAGroup() async throws {
        let (lab, host, running) = try UDPInteropTests.hostAndStack()
        defer { lab.destroy() }
        let stack = running.stack
        let eth0 = stack.link(named: "eth0")!.device.ifindex
        let watcher = try lab.spawn(host, "/usr/bin/python3", ["-c", """
            import socket, struct
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
            s.bind(('h0', 0))
            s.settimeout(10)
            print('ready', flush=True)
            while True:
                frame = s.recv(2048)
                data = frame[14:]
                if data[9] != 2 or frame[0:3] != bytes([1, 0, 0x5e]): continue
                ihl = (data[0] & 15) * 4
                m = data[ihl:]
                if m[0] == 0x22:
                    n = struct.unpack('!H', m[6:8])[0]
                    for i in range(n):
                        rtype = m[8 + 8 * i]
                        group = socket.inet_ntoa(m[12 + 8 * i:16 + 8 * i])
                        print('report', rtype, group, 'ttl', data[8], flush=True)
                        if rtype == 4: raise SystemExit(0)
            """])
        try watcher.waitFor("ready")
        let socket = try UDPSocket(stack, bind: .any(port: 5000))
        try socket.join(group: IPv4Address(239, 1, 2, 3), device: eth0)
        #expect(watcher.wait(timeout: 15) == 0, "\(watcher.stdout)\(watcher.stderr)")
        #expect(watcher.stdout.contains("report 4 239.1.2.3 ttl 1"), "\(watcher.stdout)")

        // A kernel sender: to the group (out of h0) and to the subnet's broadcast address.
        let sender = try lab.exec(host, "/usr/bin/python3", ["-c", """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton('198.18.0.2'))
            for i in range(3):
                s.sendto(b'group%d' % i, ('239.1.2.3', 5000))
                s.sendto(b'bcast%d' % i, ('198.18.0.255', 5000))
                time.sleep(0.05)
            """], timeout: 30)
        #expect(sender.status == 0, "\(sender.stderr)")
        var payloads: [String] = []
        let deadline = Date().addingTimeInterval(5)
        while payloads.count < 6 && Date() < deadline {
            if let datagram = try socket.tryReceive() {
                payloads.append(String(decoding: datagram.payload, as: UTF8.self))
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(payloads.sorted() == ["bcast0", "bcast1", "bcast2", "group0", "group1", "group2"], "\(running.dropSummary())")

        // The stack sends to the group; a kernel socket that joined it on h0 receives.
        let receiver = try lab.spawn(host, "/usr/bin/python3", ["-c", """
            import socket, struct
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(('0.0.0.0', 6000))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                         socket.inet_aton('239.1.2.4') + socket.inet_aton('198.18.0.2'))
            s.settimeout(10)
            print('ready', flush=True)
            data, peer = s.recvfrom(100)
            print('got', data.decode(), peer[0], flush=True)
            """])
        try receiver.waitFor("ready")
        socket.setOptions(UDPSocketOptions(multicastInterface: eth0))
        for _ in 0..<5 where receiver.isRunning {
            try await socket.send(Array("to the group".utf8), to: SocketAddress(IPv4Address(239, 1, 2, 4), 6000))
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(receiver.wait(timeout: 10) == 0, "\(receiver.stdout)\(receiver.stderr)")
        #expect(receiver.stdout.contains("got to the group 198.18.0.1"), "\(receiver.stdout)")
        socket.close()
        #expect(running.stop())
    }
    /// A snooping switch learns the group (RFC 4541): after the stack joins, a kernel bridge
    /// with IGMP snooping lists the group on the stack's port (`bridge mdb`); a kernel IGMPv2
    /// general query (sent from the bridge's host side) is answered with an IGMPv2 report to
    /// the group, as RFC 3376 §7.2.1 asks of a host with an older querier on the link.
    @Test func aSnoopingBridgeLearnsTheGroupAndAV2QueryGetsAV2Report() async throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let host = try lab.namespace("host")
        let dut = try lab.namespace("dut")
        try lab.veth("h0", in: host, mac: "02:00:00:00:0b:02", "d0", in: dut, mac: "02:00:00:00:0b:01")
        try lab.ip(["-n", host, "link", "add", "br0", "type", "bridge", "mcast_snooping", "1"])
        _ = try lab.exec(host, "/usr/sbin/sysctl", ["-qw", "net.ipv6.conf.br0.disable_ipv6=1"])
        try lab.ip(["-n", host, "link", "set", "h0", "master", "br0"])
        try lab.ip(["-n", host, "link", "set", "br0", "up"])
        try lab.address("198.18.0.2/24", dev: "br0", in: host)
        try lab.waitForOperstateUp("br0", in: host)
        let running = try RunningStack(namespace: dut, config: """
            link add eth0 type afpacket dev d0
            addr add 198.18.0.1/24 dev eth0
            """)
        let eth0 = running.stack.link(named: "eth0")!.device.ifindex
        let socket = try UDPSocket(running.stack, bind: .any(port: 5000))
        try socket.join(group: IPv4Address(239, 1, 2, 3), device: eth0)
        var mdb = ""
        let learned = waitUntil(timeout: 10) {
            mdb = (try? lab.exec(host, "/usr/sbin/bridge", ["mdb", "show"]).stdout) ?? ""
            return mdb.contains("239.1.2.3") && mdb.contains("port h0")
        }
        #expect(learned, "bridge mdb: \(mdb)\n\(running.dropSummary())")

        let watcher = try lab.spawn(host, "/usr/bin/python3", ["-c", """
            import socket
            # ETH_P_ALL: a bridge port's frames reach only the taps ahead of the bridge.
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
            s.bind(('h0', 0))
            s.settimeout(10)
            print('ready', flush=True)
            while True:
                frame, meta = s.recvfrom(2048)
                if meta[2] == socket.PACKET_OUTGOING or frame[12:14] != b'\\x08\\x00': continue
                data = frame[14:]
                if data[9] != 2: continue
                m = data[(data[0] & 15) * 4:]
                print('igmp', hex(m[0]), socket.inet_ntoa(m[4:8]), 'to', socket.inet_ntoa(data[16:20]), flush=True)
                if m[0] == 0x16: raise SystemExit(0)
            """])
        try watcher.waitFor("ready")
        let querier = try lab.exec(host, "/usr/bin/python3", ["-c", """
            import socket, struct
            def checksum(b):
                s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
                s = (s >> 16) + (s & 0xFFFF); s += s >> 16
                return ~s & 0xFFFF
            q = bytearray([0x11, 100, 0, 0, 0, 0, 0, 0])
            q[2:4] = struct.pack('!H', checksum(bytes(q)))
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton('198.18.0.2'))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            s.sendto(bytes(q), ('224.0.0.1', 0))
            """], timeout: 30)
        #expect(querier.status == 0, "\(querier.stderr)")
        #expect(watcher.wait(timeout: 15) == 0,
                "\(watcher.stdout)\(watcher.stderr) \(running.stack.igmp.counts) \(running.dropSummary())")
        #expect(watcher.stdout.contains("igmp 0x16 239.1.2.3 to 239.1.2.3"), "\(watcher.stdout)")
        #expect(running.stack.igmp.version(ifindex: eth0, now: MonotonicClock().now()) == 2)
        socket.close()
        #expect(running.stop())
    }
}
