import Foundation
import Testing

/// `datapath forward` as an IPv4 router between two kernel hosts (`RouterLab`).
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct RouterInteropTests {
    /// The router lab (`RouterLab`).
    func router(_ extra: [String] = [], duration: Int = 60, options: [String] = [],
                segmentationOffload: Bool = false) throws -> RouterLab {
        try RouterLab(extra, duration: duration, options: options, segmentationOffload: segmentationOffload)
    }

    @Test func kernelPingCrossesItAndReachesBothOfItsAddressesAndTTLProbesGetTimeExceeded() throws {
        let r = try router()
        defer { r.lab.destroy() }
        let across = try r.lab.exec(r.a, "/usr/bin/ping", ["-c", "3", "-i", "0.2", "-W", "2", "198.18.2.2"], timeout: 20)
        #expect(across.stdout.contains("3 received"), "\(across.stdout)")
        let near = try r.lab.exec(r.a, "/usr/bin/ping", ["-c", "2", "-i", "0.2", "-W", "2", "198.18.1.1"], timeout: 20)
        #expect(near.stdout.contains("2 received"), "\(near.stdout)")
        // 3000 bytes: the host fragments, the forwarder reassembles, replies and fragments back.
        let large = try r.lab.exec(r.a, "/usr/bin/ping", ["-c", "2", "-i", "0.2", "-W", "2", "-s", "3000", "198.18.1.1"],
                                   timeout: 20)
        #expect(large.stdout.contains("2 received"), "\(large.stdout)")
        let far = try r.lab.exec(r.b, "/usr/bin/ping", ["-c", "2", "-i", "0.2", "-W", "2", "198.18.1.1"], timeout: 20)
        #expect(far.stdout.contains("2 received"), "\(far.stdout)")
        let probe = try r.lab.exec(r.a, "/usr/bin/ping", ["-c", "1", "-t", "1", "-W", "2", "198.18.2.2"], timeout: 20)
        #expect(probe.stdout.contains("From 198.18.1.1") && probe.stdout.contains("Time to live exceeded"),
                "\(probe.stdout)")
        let unreachable = try r.lab.exec(r.a, "/usr/bin/ping", ["-c", "1", "-W", "2", "198.19.0.1"], timeout: 20)
        #expect(unreachable.stdout.contains("Destination Net Unreachable"), "\(unreachable.stdout)")
        let out = r.stop()
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("ip-forward"), "\(out.stdout)")
        #expect(out.stdout.contains("icmp-rcv"), "\(out.stdout)")
        let snmp = snmpValues(out.stdout, "Ip")
        #expect((snmp["ForwDatagrams"] ?? 0) >= 6, "\(out.stdout)")
        #expect((snmpValues(out.stdout, "Icmp")["OutTimeExcds"] ?? 0) == 1, "\(out.stdout)")
        #expect((snmpValues(out.stdout, "Icmp")["OutEchoReps"] ?? 0) == 6, "\(out.stdout)")
        #expect((snmpValues(out.stdout, "Ip")["ReasmOKs"] ?? 0) == 2, "\(out.stdout)")
    }

    /// ip_forward_options against the kernel's ping: the forwarder writes its outgoing address
    /// into record route (both ways: 198.18.2.1 towards B, 198.18.1.1 back towards A) and
    /// into an address-and-timestamp option; its own echo replies carry record route back
    /// (ip_options_echo).
    @Test func kernelPingRecordRouteAndTimestampNameTheForwarder() throws {
        let r = try router()
        defer { r.lab.destroy() }
        let route = try r.lab.exec(r.a, "/usr/bin/ping", ["-c", "1", "-W", "2", "-R", "198.18.2.2"], timeout: 20)
        #expect(route.stdout.contains("1 received"), "\(route.stdout)")
        let recorded = route.stdout.components(separatedBy: "RR:").dropFirst().first ?? ""
        #expect(recorded.contains("198.18.2.1") && recorded.contains("198.18.1.1"), "\(route.stdout)")
        let stamps = try r.lab.exec(r.a, "/usr/bin/ping", ["-c", "1", "-W", "2", "-T", "tsandaddr", "198.18.2.2"],
                                    timeout: 20)
        #expect(stamps.stdout.contains("1 received"), "\(stamps.stdout)")
        let times = stamps.stdout.components(separatedBy: "TS:").dropFirst().first ?? ""
        #expect(times.contains("198.18.2.1"), "\(stamps.stdout)")
        // To the forwarder itself: its echo reply carries the record route back, with it in it.
        let own = try r.lab.exec(r.a, "/usr/bin/ping", ["-c", "1", "-W", "2", "-R", "198.18.1.1"], timeout: 20)
        #expect(own.stdout.contains("1 received"), "\(own.stdout)")
        let ownRecorded = own.stdout.components(separatedBy: "RR:").dropFirst().first ?? ""
        #expect(ownRecorded.contains("198.18.1.1"), "\(own.stdout)")
        let out = r.stop()
        #expect(out.status == 0, "\(out.stderr)")
    }

    /// GSO pass-through (virtio-net headers on the rings): with TSO on, host A's TCP leaves as
    /// 64 KB GSO skbs; the forwarder receives them whole, routes them (segments fit the MTU)
    /// and sends them whole, and host B's veth counts super-frames too — far fewer packets
    /// than 1448-byte segments would be. The transfer is byte-exact.
    @Test func tsoSuperFramesCrossWholeAndTheTransferIsByteExact() throws {
        let r = try router(segmentationOffload: true)
        defer { r.lab.destroy() }
        let bytes = 8 << 20
        try expectTCPTransfer(r, bytes: bytes)
        let segments = bytes / 1448
        let intoForwarder = try r.lab.counter(r.dut, "pa", "rx_packets")
        let intoHostB = try r.lab.counter(r.b, "b0", "rx_packets")
        #expect(intoForwarder < segments / 2, "forwarder received \(intoForwarder) skbs for \(segments) segments")
        #expect(intoHostB < segments / 2, "host B received \(intoHostB) skbs for \(segments) segments")
        let out = r.stop()
        #expect(out.status == 0, "\(out.stderr)")
        #expect(!out.stdout.contains("SKB_GSO_SEG") && !out.stdout.contains("TRUNCATED_FRAME"), "\(out.stdout)")
    }


    @Test(arguments: [1, 2])
    func aTCPTransferBetweenTheHostsIsByteExactAndTheStatisticsAreWrittenAsJSON(workers: Int) throws {
        let json = FileManager.default.temporaryDirectory.appendingPathComponent("dp-stats-\(getpid())-\(workers).json")
        defer { try? FileManager.default.removeItem(at: json) }
        let r = try router(options: ["--workers", String(workers), "--stats-json", json.path])
        defer { r.lab.destroy() }
        try expectTCPTransfer(r, bytes: 4 << 20)
        let out = r.stop()
        #expect(out.status == 0, "\(out.stderr)")
        let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any]
        let snmp = stats?["snmp"] as? [String: [String: Int]]
        let forwarded = snmp?["Ip"]?["ForwDatagrams"] ?? 0
        #expect(forwarded > 2000, "\(String(describing: stats))")
        let stages = (stats?["stages"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        #expect(stages.contains("ip-forward") && stages.contains("ip-finish-output2"), "\(stages)")
        let cache = stats?["route_cache"] as? [String: Int]
        #expect((cache?["hits"] ?? 0) > 0, "\(String(describing: cache))")
        let links = (stats?["links"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        #expect(links == ["lo", "eth0", "eth1"])
    }

    @Test func pathMTUDiscoveryAcrossASmallerLinkAndTheHostAdapts() throws {
        let r = try router(["link set eth1 mtu 1000"])
        defer { r.lab.destroy() }
        let big = try r.lab.exec(r.a, "/usr/bin/ping", ["-c", "2", "-i", "0.3", "-W", "2", "-M", "do", "-s", "1200",
                                                        "198.18.2.2"], timeout: 20)
        #expect(big.stdout.contains("mtu = 1000") || big.stderr.contains("mtu=1000"), "\(big.stdout) \(big.stderr)")
        let route = try r.lab.exec(r.a, "/usr/sbin/ip", ["route", "get", "198.18.2.2"])
        #expect(route.stdout.contains("mtu 1000"), "\(route.stdout)")
        try expectTCPTransfer(r, bytes: 1 << 20)
        let out = r.stop()
        #expect((snmpValues(out.stdout, "Icmp")["OutDestUnreachs"] ?? 0) >= 1, "\(out.stdout)")
    }

    @Test func aLargeDatagramWithoutDFIsFragmentedAndReassembledByTheKernel() throws {
        let r = try router(["link set eth1 mtu 1000"])
        defer { r.lab.destroy() }
        let receiver = try r.lab.spawn(r.b, "/usr/bin/python3", ["-c", """
            import socket, hashlib
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(('198.18.2.2', 5002)); s.settimeout(15)
            print('ready', flush=True)
            d, _ = s.recvfrom(65535)
            print(len(d), hashlib.sha256(d).hexdigest(), flush=True)
            """])
        try receiver.waitFor("ready")
        let sender = try r.lab.exec(r.a, "/usr/bin/python3", ["-c", """
            import socket, hashlib
            d = bytes((i * 7) & 0xFF for i in range(1400))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: DF clear
            s.sendto(d, ('198.18.2.2', 5002))
            print(len(d), hashlib.sha256(d).hexdigest())
            """], timeout: 20)
        #expect(receiver.wait(timeout: 20) == 0, "\(receiver.stderr)")
        #expect(receiver.stdout.contains(sender.stdout.trimmingCharacters(in: .whitespacesAndNewlines)),
                "sent \(sender.stdout) \(sender.stderr), got \(receiver.stdout)")
        let out = r.stop()
        #expect((snmpValues(out.stdout, "Ip")["FragCreates"] ?? 0) == 2, "\(out.stdout)")
        #expect((snmpValues(out.stdout, "Ip")["FragOKs"] ?? 0) == 1, "\(out.stdout)")
    }

    /// The stack answers UDP to a port nobody bound with ICMP port unreachable, which a
    /// connected kernel socket reports as ECONNREFUSED on its next receive (Linux's
    /// `__udp4_lib_err`).
    @Test func aConnectedKernelUDPSocketGetsConnectionRefusedFromTheStack() throws {
        let r = try router()
        defer { r.lab.destroy() }
        let client = try r.lab.exec(r.a, "/usr/bin/python3", ["-c", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(('198.18.1.1', 9)); s.settimeout(3)
            s.send(b'anyone there?')
            try:
                s.recv(100); print('answered')
            except ConnectionRefusedError:
                print('refused')
            except socket.timeout:
                print('timeout')
            """], timeout: 20)
        #expect(client.stdout.contains("refused"), "\(client.stdout) \(client.stderr)\n\(r.report)")
        let out = r.stop()
        #expect((snmpValues(out.stdout, "Udp")["NoPorts"] ?? 0) == 1, "\(out.stdout)\n\(out.stderr)")
    }

    @Test func aFilterRuleDropsWhatItNamesAndCountsIt() throws {
        let r = try router(["filter add forward proto udp dport 9 drop", "filter list"])
        defer { r.lab.destroy() }
        let receiver = try r.lab.spawn(r.b, "/usr/bin/python3", ["-c", """
            import socket, select
            socks = []
            for port in (9, 10):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('198.18.2.2', port)); socks.append(s)
            print('ready', flush=True)
            got = []
            while True:
                ready, _, _ = select.select(socks, [], [], 3)
                if not ready: break
                for s in ready:
                    s.recvfrom(2048); got.append(s.getsockname()[1])
            print('got', sorted(got), flush=True)
            """])
        try receiver.waitFor("ready")
        _ = try r.lab.exec(r.a, "/usr/bin/python3", ["-c", """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for i in range(3):
                s.sendto(b'discard me', ('198.18.2.2', 9)); s.sendto(b'keep me', ('198.18.2.2', 10)); time.sleep(0.05)
            """], timeout: 20)
        #expect(receiver.wait(timeout: 20) == 0, "\(receiver.stderr)")
        #expect(receiver.stdout.contains("got [10, 10, 10]"), "\(receiver.stdout)")
        let out = r.stop()
        #expect(out.stdout.contains("NETFILTER_DROP 3"), "\(out.stdout)")
        #expect(out.stdout.contains("         3         114  filter add forward proto udp dport 9 drop"), "\(out.stdout)")
    }

    /// Sends `bytes` from a to b over TCP and expects b to receive exactly them.
    func expectTCPTransfer(_ r: RouterLab, bytes: Int) throws {
        try r.lab.expectTCPTransfer(from: r.a, to: r.b, address: "198.18.2.2", bytes: bytes)
    }
}
