import Datapath
import DatapathWire
import Foundation
import Testing

/// `datapath ping` (a raw ICMP socket of the stack) against kernel hosts, and raw receive of
/// kernel pings, in namespaces this suite makes (198.18.0.0/15 only): the stack on d0 as
/// 198.18.0.1, a kernel router on h0 as 198.18.0.2 with a 1000-byte-MTU link to a kernel host
/// 198.18.5.2.
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct PingInteropTests {
    let datapath = NetnsEnvironment.product("datapath")
    let stack = ["--cmd", "link add eth0 type afpacket dev d0", "--cmd", "addr add 198.18.0.1/24 dev eth0",
                 "--cmd", "route add 198.18.5.0/24 via 198.18.0.2"]

    func lab() throws -> (Lab, router: String, dut: String) {
        let lab = try Lab()
        do {
            let router = try lab.namespace("router"), far = try lab.namespace("far"), dut = try lab.namespace("dut")
            try lab.veth("h0", in: router, mac: "02:00:00:00:0d:02", "d0", in: dut, mac: "02:00:00:00:0d:01")
            try lab.veth("r1", in: router, mac: "02:00:00:00:0d:03", "b0", in: far, mac: "02:00:00:00:0d:04")
            try lab.address("198.18.0.2/24", dev: "h0", in: router)
            try lab.address("198.18.5.1/24", dev: "r1", in: router)
            try lab.address("198.18.5.2/24", dev: "b0", in: far)
            try lab.ip(["-n", router, "link", "set", "r1", "mtu", "1000"])
            try lab.ip(["-n", far, "link", "set", "b0", "mtu", "1000"])
            try lab.ip(["-n", far, "route", "add", "198.18.0.0/24", "via", "198.18.5.1"])
            try lab.exec(router, "/usr/sbin/sysctl", ["-qw", "net.ipv4.ip_forward=1"])
            return (lab, router, dut)
        } catch {
            lab.destroy()
            throw error
        }
    }

    func ping(_ lab: Lab, _ dut: String, _ arguments: [String]) throws -> CommandResult {
        try lab.exec(dut, datapath, ["ping"] + stack + arguments, timeout: 60)
    }

    /// Replies from a kernel host print as iputils prints them, with the statistics; a 4000-byte
    /// ping crosses fragmented both ways; no reply at all exits 1.
    @Test func aKernelHostAnswersPlainAndFragmentedPings() throws {
        let (lab, _, dut) = try lab()
        defer { lab.destroy() }
        let plain = try ping(lab, dut, ["-c", "3", "-i", "0.2", "198.18.0.2"])
        #expect(plain.status == 0, "\(plain.stdout)\(plain.stderr)")
        let lines = plain.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "PING 198.18.0.2 (198.18.0.2) 56(84) bytes of data.")
        for n in 1...3 {
            #expect(lines.contains { $0.hasPrefix("64 bytes from 198.18.0.2: icmp_seq=\(n) ttl=64 time=") && $0.hasSuffix(" ms") },
                    "\(plain.stdout)")
        }
        #expect(lines.contains("--- 198.18.0.2 ping statistics ---"))
        #expect(lines.contains { $0.hasPrefix("3 packets transmitted, 3 received, 0% packet loss, time ") })
        #expect(lines.last?.hasPrefix("rtt min/avg/max/mdev = ") == true, "\(plain.stdout)")
        #expect(plain.stderr.contains("Icmp: "))

        let large = try ping(lab, dut, ["-c", "2", "-i", "0.2", "-s", "4000", "198.18.5.2"])
        #expect(large.status == 0, "\(large.stdout)\(large.stderr)")
        #expect(large.stdout.contains("4008 bytes from 198.18.5.2: icmp_seq=1 ttl=63 time="), "\(large.stdout)")
        #expect(large.stdout.contains("2 packets transmitted, 2 received, 0% packet loss"), "\(large.stdout)")

        // Its own address: out of lo and back, the stack answering itself.
        let own = try ping(lab, dut, ["-c", "2", "-i", "0.2", "198.18.0.1"])
        #expect(own.status == 0 && own.stdout.contains("64 bytes from 198.18.0.1: icmp_seq=2 ttl=64"), "\(own.stdout)")

        let nobody = try ping(lab, dut, ["-c", "2", "-i", "0.2", "-W", "1", "198.18.0.9"])
        #expect(nobody.status == 1)
        #expect(nobody.stdout.contains("2 packets transmitted, 0 received, 100% packet loss"), "\(nobody.stdout)")
    }

    /// `-M do` across the 1000-byte hop: the router's fragmentation needed reaches the socket
    /// and is printed; the path MTU it teaches the stack refuses the next requests locally
    /// (EMSGSIZE); `-M dont` gets through (the router fragments).
    @Test func fragmentationNeededReachesTheSocket() throws {
        let (lab, _, dut) = try lab()
        defer { lab.destroy() }
        let result = try ping(lab, dut, ["-c", "3", "-i", "0.3", "-W", "1", "-M", "do", "-s", "1400", "198.18.5.2"])
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("From 198.18.0.2 icmp_seq=1 Frag needed and DF set (mtu = 1000)"), "\(result.stdout)")
        #expect(result.stdout.contains("ping: local error: message too long, mtu=1000"), "\(result.stdout)")
        #expect(result.stdout.contains("3 packets transmitted, 0 received, +"), "\(result.stdout)")
        let dont = try ping(lab, dut, ["-c", "2", "-i", "0.2", "-M", "dont", "-s", "1400", "198.18.5.2"])
        #expect(dont.status == 0, "\(dont.stdout)\(dont.stderr)")
        #expect(dont.stdout.contains("2 received"), "\(dont.stdout)")
    }

    /// A raw ICMP socket of a running stack sees the kernel's echo requests (a copy each,
    /// header first) while the stack answers them.
    @Test func rawReceiveSeesKernelPings() async throws {
        let (lab, router, dut) = try lab()
        defer { lab.destroy() }
        let running = try RunningStack(namespace: dut, config: "link add eth0 type afpacket dev d0\naddr add 198.18.0.1/24 dev eth0")
        let socket = try RawSocket(running.stack, protocol: .icmp)
        let pinger = try lab.spawn(router, "/usr/bin/ping", ["-c", "3", "-i", "0.2", "-W", "2", "198.18.0.1"])
        var requests: [RawDatagram] = []
        let deadline = Date().addingTimeInterval(10)
        while requests.count < 3 && Date() < deadline {
            if let packet = try socket.tryReceive() { requests.append(packet) } else { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(pinger.wait(timeout: 10) == 0, "\(pinger.stdout)")
        #expect(pinger.stdout.contains("3 received"))
        #expect(requests.count == 3)
        #expect(requests.allSatisfy { $0.source == IPv4Address(198, 18, 0, 2) && $0.payload.first == 8 })
        socket.close()
        #expect(running.stop())
    }
}
