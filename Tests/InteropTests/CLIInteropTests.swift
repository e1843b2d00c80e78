import Foundation
import Testing

/// The `datapath` tool against real veth interfaces in namespaces this suite makes, with the
/// Linux kernel (and tshark) as the other side. Addresses from 198.18.0.0/15 only.
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct CLIInteropTests {
    let datapath = NetnsEnvironment.product("datapath")

    /// Two namespaces joined by one veth: a0 (198.18.0.1) in "a", b0 (198.18.0.2) in "b".
    func twoHosts(_ lab: Lab) throws -> (String, String) {
        let a = try lab.namespace("a"), b = try lab.namespace("b")
        try lab.veth("a0", in: a, mac: "02:00:00:00:00:01", "b0", in: b, mac: "02:00:00:00:00:02")
        return (a, b)
    }

    @Test func genFramesAreCapturedAndReadBackByTshark() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let (a, b) = try twoHosts(lab)
        let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("dp-capture-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let capture = try lab.spawn(b, datapath, ["capture", "--dev", "b0", "--count", "200", "--duration", "20", "--write", pcap])
        try capture.waitFor("capture: listening on b0")
        let gen = try lab.exec(a, datapath, ["gen", "--dev", "a0", "--src-mac", "02:00:00:00:00:01",
                                             "--dst-mac", "02:00:00:00:00:02", "--src", "198.18.0.1",
                                             "--dst", "198.18.1.9", "--sport", "5000", "--dport", "9",
                                             "--size", "128", "--count", "200", "--pps", "20000", "--flows", "4"])
        #expect(gen.status == 0, "\(gen.stderr)")
        #expect(gen.stdout.contains("gen: sent 200 packets"), "\(gen.stdout)")
        #expect(capture.wait(timeout: 20) == 0, "\(capture.stderr)")
        #expect(capture.stdout.contains("capture: 200 packets"), "\(capture.stdout)")

        let tshark = try run("/usr/bin/tshark", ["-r", pcap, "-T", "fields", "-e", "frame.len", "-e", "eth.src",
                                                   "-e", "ip.src", "-e", "ip.dst", "-e", "udp.srcport",
                                                   "-e", "udp.dstport", "-e", "ip.checksum.status", "-o", "ip.check_checksum:TRUE"])
        #expect(tshark.status == 0, "\(tshark.stderr)")
        let rows = tshark.stdout.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(rows.count == 200)
        var ports = Set<String>()
        for row in rows {
            #expect(row.count == 7)
            guard row.count == 7 else { continue }
            #expect(row[0] == "124")  // 128 bytes including the FCS, which is not captured
            #expect(row[1] == "02:00:00:00:00:01")
            #expect(row[2] == "198.18.0.1" && row[3] == "198.18.1.9")
            #expect(row[5] == "9")
            #expect(row[6] == "1")  // tshark: 1 = checksum good (0 bad, 2 unverified)
            ports.insert(row[4])
        }
        #expect(ports == ["5000", "5001", "5002", "5003"])
    }

    /// gen (g0, 198.18.0.1) ⇄ x0 [dut] x1 ⇄ sink (s0, 198.18.0.2): the xconnect lab.
    func xconnectLab() throws -> (lab: Lab, gen: String, dut: String, sink: String) {
        let lab = try Lab()
        do {
            let gen = try lab.namespace("gen"), dut = try lab.namespace("dut"), sink = try lab.namespace("sink")
            try lab.veth("g0", in: gen, mac: "02:00:00:00:00:01", "x0", in: dut, mac: "02:00:00:00:01:00")
            try lab.veth("s0", in: sink, mac: "02:00:00:00:00:02", "x1", in: dut, mac: "02:00:00:00:01:01")
            try lab.address("198.18.0.1/24", dev: "g0", in: gen)
            try lab.address("198.18.0.2/24", dev: "s0", in: sink)
            return (lab, gen, dut, sink)
        } catch {
            lab.destroy()
            throw error
        }
    }

    @Test func xconnectCarriesKernelUDPAndGenFramesBothWays() throws {
        let (lab, gen, dut, sink) = try xconnectLab()
        defer { lab.destroy() }

        let xconnect = try lab.spawn(dut, datapath, ["xconnect", "x0", "x1", "--duration", "40", "--workers", "2"])
        try xconnect.waitFor("xconnect: forwarding x0 <-> x1")

        // Kernel to kernel: ARP and a UDP flow cross the cross-connect.
        let receiver = try lab.spawn(sink, "/usr/bin/python3", ["-c", udpReceiver(port: 9000, expect: 2000)])
        try receiver.waitFor("ready")
        let sender = try lab.exec(gen, "/usr/bin/python3", ["-c", udpSender(to: "198.18.0.2", port: 9000, count: 2000)])
        #expect(sender.status == 0, "\(sender.stderr)")
        #expect(receiver.wait(timeout: 20) == 0)
        #expect(receiver.stdout.contains("received 2000"), "\(receiver.stdout) \(receiver.stderr)")

        // datapath gen both ways at the same time, captured on the far side.
        let pcapDir = FileManager.default.temporaryDirectory.path
        let toSink = "\(pcapDir)/dp-xc-sink-\(getpid()).pcap", toGen = "\(pcapDir)/dp-xc-gen-\(getpid()).pcap"
        defer { try? FileManager.default.removeItem(atPath: toSink); try? FileManager.default.removeItem(atPath: toGen) }
        let captureSink = try lab.spawn(sink, datapath, ["capture", "--dev", "s0", "--count", "5000", "--duration", "20", "--write", toSink])
        let captureGen = try lab.spawn(gen, datapath, ["capture", "--dev", "g0", "--count", "5000", "--duration", "20", "--write", toGen])
        try captureSink.waitFor("listening")
        try captureGen.waitFor("listening")
        let forward = try lab.spawn(gen, datapath, ["gen", "--dev", "g0", "--src-mac", "02:00:00:00:00:01",
                                                    "--dst-mac", "02:00:00:00:00:02", "--src", "198.18.0.1",
                                                    "--dst", "198.18.0.2", "--count", "5000", "--pps", "25000", "--flows", "8"])
        let backward = try lab.spawn(sink, datapath, ["gen", "--dev", "s0", "--src-mac", "02:00:00:00:00:02",
                                                      "--dst-mac", "02:00:00:00:00:01", "--src", "198.18.0.2",
                                                      "--dst", "198.18.0.1", "--count", "5000", "--pps", "25000", "--flows", "8"])
        #expect(forward.wait(timeout: 30) == 0)
        #expect(backward.wait(timeout: 30) == 0)
        #expect(captureSink.wait(timeout: 20) == 0)
        #expect(captureGen.wait(timeout: 20) == 0)
        // On a shortfall, the kernel's counters of every interface on the way say where frames went.
        let complete = captureSink.stdout.contains("capture: 5000 packets") && captureGen.stdout.contains("capture: 5000 packets")
        let counters = complete ? "" : (try? [(gen, "g0"), (dut, "x0"), (dut, "x1"), (sink, "s0")].map { ns, dev in
            try lab.exec(ns, "/usr/sbin/ip", ["-s", "link", "show", dev]).stdout
        }.joined()) ?? ""
        #expect(captureSink.stdout.contains("capture: 5000 packets"), "\(captureSink.stdout) \(xconnect.stdout) \(counters)")
        #expect(captureGen.stdout.contains("capture: 5000 packets"), "\(captureGen.stdout) \(xconnect.stdout) \(counters)")

        xconnect.interrupt()
        #expect(xconnect.wait(timeout: 10) == 0)
        // Summary: at least the 2000 UDP + 5000 gen frames went each way that carried them.
        let counts = try #require(xconnectSummary(xconnect.stdout, "x0", "x1"), "\(xconnect.stdout)")
        #expect(counts.forward >= 7000, "\(xconnect.stdout)")
        #expect(counts.backward >= 5000, "\(xconnect.stdout)")
    }

    /// GSO pass-through on the L2 path: with the hosts' TSO on, their TCP leaves as 64 KB GSO
    /// skbs; xconnect takes them whole (virtio-net headers) and sends them whole, so the sink's
    /// veth counts far fewer skbs than 1448-byte segments would be; the transfer is byte-exact.
    @Test func xconnectCarriesTSOSuperFramesWhole() throws {
        let (lab, gen, dut, sink) = try xconnectLab()
        defer { lab.destroy() }
        let xconnect = try lab.spawn(dut, datapath, ["xconnect", "x0", "x1", "--duration", "40"])
        try xconnect.waitFor("xconnect: forwarding x0 <-> x1")
        let bytes = 8 << 20
        try lab.expectTCPTransfer(from: gen, to: sink, address: "198.18.0.2", bytes: bytes)
        let segments = bytes / 1448
        let received = try lab.counter(sink, "s0", "rx_packets")
        #expect(received < segments / 2, "the sink received \(received) skbs for \(segments) segments")
        xconnect.interrupt()
        #expect(xconnect.wait(timeout: 10) == 0)
    }

    @Test func missingInterfaceIsOneLineAndExitCode2() throws {
        try NetnsEnvironment.check()
        let result = try run(datapath, ["capture", "--dev", "veth9nosuch", "--write", "/tmp/dp-never.pcap"])
        #expect(result.status == 2)
        #expect(result.stderr == "datapath: error: no such interface: veth9nosuch\n")
        let gen = try run(datapath, ["gen", "--dev", "veth9nosuch", "--src-mac", "02:00:00:00:00:01", "--dst-mac",
                                     "02:00:00:00:00:02", "--src", "198.18.0.1", "--dst", "198.18.0.2"])
        #expect(gen.status == 2)
        #expect(gen.stderr == "datapath: error: no such interface: veth9nosuch\n")
    }

    @Test func withoutCapNetRawTheErrorSaysRunAsRoot() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let ns = try lab.namespace("p")
        // A copy anyone can execute, run as nobody inside a namespace with only lo.
        let copy = "/tmp/dp-noroot-\(getpid())"
        try FileManager.default.copyItem(atPath: datapath, toPath: copy)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        chmod(copy, 0o755)
        // Another suite's process spawned while the copy was open for writing holds that
        // descriptor until it execs: exec then fails with ETXTBSY for a moment. Retry briefly.
        var result = CommandResult(status: 126, stdout: "", stderr: "Text file busy")
        for _ in 0..<50 where result.status == 126 && result.stderr.contains("Text file busy") {
            result = try lab.exec(ns, "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                           copy, "capture", "--dev", "lo", "--write", "/tmp/dp-never.pcap"])
            if result.status == 126 { usleep(100_000) }
        }
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr == "datapath: error: cannot open lo: needs CAP_NET_RAW: run as root (socket)\n")
    }

    @Test func badFlagsAreOneLineAndExitCode2() throws {
        for arguments in [["gen", "--dev"], ["gen", "--count", "many"], ["xconnect", "a"], ["nosuchcommand"],
                          ["gen", "--dev", "x", "--src-mac", "zz", "--dst-mac", "02:00:00:00:00:02", "--src", "198.18.0.1", "--dst", "198.18.0.2"]] {
            let result = try run(datapath, arguments)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.hasPrefix("datapath: error: "), "\(arguments): \(result.stderr)")
            #expect(result.stderr.filter { $0 == "\n" }.count == 1, "\(arguments): \(result.stderr)")
        }
        #expect(try run(datapath, ["--help"]).status == 0)
    }
}

/// The counts of `datapath xconnect`'s final line `xconnect: A->B N pkts, B->A M pkts`.
func xconnectSummary(_ output: String, _ a: String, _ b: String) -> (forward: Int, backward: Int)? {
    let prefix = "xconnect: \(a)->\(b) "
    guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix(prefix) && $0.hasSuffix(" pkts") }) else { return nil }
    let parts = line.dropFirst(prefix.count).split(separator: " ")
    // N pkts, B->A M pkts
    guard parts.count == 5, let forward = Int(parts[0]), let backward = Int(parts[3]) else { return nil }
    return (forward, backward)
}

func udpReceiver(port: Int, expect: Int) -> String {
    """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", \(port)))
    s.settimeout(10)
    print("ready", flush=True)
    n = 0
    try:
        while n < \(expect):
            data, _ = s.recvfrom(2048)
            if data.startswith(b"dp-"): n += 1
    except socket.timeout:
        pass
    print(f"received {n}", flush=True)
    """
}

func udpSender(to address: String, port: Int, count: Int) -> String {
    """
    import socket, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(\(count)):
        s.sendto(b"dp-%06d" % i + b"x" * 100, ("\(address)", \(port)))
        if i % 50 == 49: time.sleep(0.002)
    """
}
