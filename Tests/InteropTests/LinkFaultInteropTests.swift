import Foundation
import Testing

/// `datapath forward` as a router under load while the kernel changes its links underneath it
/// (198.18.0.0/15 only):
///
///     [a] a0 198.18.1.2 ──veth── pa [dut: eth0 198.18.1.1 | eth1 198.18.2.1] pb ──veth── b0 198.18.2.2 [b]
///
/// `datapath gen` in a sends UDP through the forwarder to b while a test takes pb or pa down and
/// up, changes pb's MTU, or deletes pb. Proven: the forwarder reports each event on stderr
/// (`datapath: link eth1 (pb) down`, `… up`, `… mtu 1500 -> 1280`, `… lost`), traffic flows again
/// within seconds of a link coming back (before the fix a flap under load wedged pb's
/// transmission for good: every later packet a QDISC_DROP), a new MTU is used for fragmentation
/// and path-MTU ICMP, a deleted interface leaves the other links serving and the forwarder idle
/// rather than spinning, and it still exits 0 on SIGINT.
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct LinkFaultInteropTests {
    let datapath = NetnsEnvironment.product("datapath")

    /// The router lab, the forwarder printing only events and its summary (`--quiet`).
    private func router() throws -> RouterLab { try RouterLab(options: ["--quiet"]) }

    /// Starts `datapath gen` in a: UDP from a0 to 198.18.2.2 through the forwarder (pa's MAC).
    private func load(_ r: RouterLab, pps: Int, seconds: Int, size: Int = 64) throws -> BackgroundCommand {
        try r.lab.spawn(r.a, datapath, [
            "gen", "--dev", "a0", "--src-mac", "02:00:00:00:08:01", "--dst-mac", "02:00:00:00:09:01",
            "--src", "198.18.1.2", "--dst", "198.18.2.2", "--count", String(pps * seconds),
            "--pps", String(pps), "--duration", String(seconds), "--size", String(size)])
    }

    /// Polls b0's rx_packets every 100 ms, for at most `limit` seconds; returns how much it grew
    /// and how long it took to grow by `packets` (nil: not within `limit`).
    private func rxGrowth(_ r: RouterLab, by packets: Int, limit: Double) throws -> (grew: Int, seconds: Double?) {
        let start = Date(), first = try r.lab.counter(r.b, "b0", "rx_packets")
        var grew = 0
        for _ in 0...Int(limit * 10) {
            grew = try r.lab.counter(r.b, "b0", "rx_packets") - first
            let elapsed = Date().timeIntervalSince(start)
            if grew >= packets { return (grew, elapsed) }
            if elapsed > limit { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return (grew, nil)
    }

    /// Pings `address` from host a; returns the reply count (ping's "N received") and its output.
    private func ping(_ r: RouterLab, _ address: String, _ options: [String]) throws -> (received: Int, output: String) {
        let result = try r.lab.exec(r.a, "/usr/bin/ping", options + [address], timeout: 20)
        let output = result.stdout + result.stderr
        guard let match = output.range(of: #"[0-9]+ received"#, options: .regularExpression) else { return (0, output) }
        return (Int(output[match].prefix { $0.isNumber }) ?? 0, output)
    }

    /// CPU seconds (user + system, all threads) process `pid` has used: /proc/PID/stat fields 14
    /// and 15, in clock ticks. Read with cat, since /proc files report size 0.
    private func cpuSeconds(_ pid: pid_t) -> Double? {
        guard let stat = try? run("/bin/cat", ["/proc/\(pid)/stat"]).stdout,
              let name = stat.lastIndex(of: ")") else { return nil }
        // After the parenthesised command name comes field 3 (state): fields 14 and 15 are at 11 and 12.
        let fields = stat[stat.index(after: name)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Takes `dev` (pa or pb, in dut) down for 2 s, 2 s into 9 s of 100 kpps, and expects b0 to
    /// receive 10 000 packets within `recovery` seconds of `up`, a kernel ping across afterwards,
    /// both events on stderr and exit 0.
    private func expectRecoveryFromAFlap(of dev: String, link: String, within recovery: Double) throws {
        let r = try router()
        defer { r.lab.destroy() }
        let gen = try load(r, pps: 100_000, seconds: 9)
        Thread.sleep(forTimeInterval: 2)
        let before = try r.lab.counter(r.b, "b0", "rx_packets")
        #expect(before >= 10_000, "load did not reach b0 before the flap: rx_packets \(before)\n\(r.report)")
        try r.lab.ip(["-n", r.dut, "link", "set", dev, "down"])
        Thread.sleep(forTimeInterval: 2)
        try r.lab.ip(["-n", r.dut, "link", "set", dev, "up"])
        let growth = try rxGrowth(r, by: 10_000, limit: recovery + 0.5)
        let took = growth.seconds.map { String(format: "%.2f s", $0) } ?? "more than \(recovery + 0.5) s"
        #expect((growth.seconds ?? .infinity) <= recovery,
                "b0 took \(took) after \(dev) up to receive 10 000 packets (got \(growth.grew))\n\(r.report)")
        gen.wait(timeout: 20)
        let across = try ping(r, "198.18.2.2", ["-c", "3", "-i", "0.3", "-W", "1"])
        #expect(across.received >= 2, "\(across.output)\ngen: \(gen.stdout) \(gen.stderr)\n\(r.report)")
        let status = r.stop().status
        #expect(status == 0, "\(r.report)")
        #expect(r.forward.stderr.contains("link \(link) (\(dev)) down"), "\(r.report)")
        #expect(r.forward.stderr.contains("link \(link) (\(dev)) up"), "\(r.report)")
    }

    @Test func egressFlapUnderLoadRecoversWithinSeconds() throws {
        try expectRecoveryFromAFlap(of: "pb", link: "eth1", within: 2.5)
    }

    /// The forwarder's receiving side: its ring on pa must come back too (carrier returns to a0
    /// through linkwatch, up to a second late, hence the longer allowance).
    @Test func ingressFlapUnderLoadRecoversWithinSeconds() throws {
        try expectRecoveryFromAFlap(of: "pa", link: "eth0", within: 3)
    }

    /// pb's MTU drops to 1280 while 1400-byte DF frames cross at 50 kpps. Afterwards the
    /// forwarder fragments to the new MTU and answers DF packets over it with "fragmentation
    /// needed, mtu 1280" (RFC 1191).
    @Test func anMTUChangeUnderLoadIsFollowed() throws {
        let r = try router()
        defer { r.lab.destroy() }
        let gen = try load(r, pps: 50_000, seconds: 8, size: 1400)
        Thread.sleep(forTimeInterval: 2)
        try r.lab.ip(["-n", r.dut, "link", "set", "pb", "mtu", "1280"])
        // Both ends of a link share its MTU: a veth drops frames longer than its receiving end's
        // MTU, so b's replies must fit 1280 too (b's kernel fragments them).
        try r.lab.ip(["-n", r.b, "link", "set", "b0", "mtu", "1280"])
        Thread.sleep(forTimeInterval: 1)
        gen.wait(timeout: 20)
        let small = try ping(r, "198.18.2.2", ["-c", "2", "-i", "0.3", "-W", "1", "-s", "1000"])
        #expect(small.received >= 1, "\(small.output)\n\(r.report)")
        // Before the DF probe: once host a learns the path MTU it fragments even with -M dont
        // (IP_PMTUDISC_DONT still uses it), and the forwarder would have nothing to fragment.
        let fragmented = try ping(r, "198.18.2.2", ["-c", "2", "-i", "0.3", "-W", "1", "-M", "dont", "-s", "1400"])
        #expect(fragmented.received >= 1, "\(fragmented.output)\n\(r.report)")
        let probe = try ping(r, "198.18.2.2", ["-c", "2", "-i", "0.3", "-W", "1", "-M", "do", "-s", "1300"])
        // The first reply is the forwarder's ICMP ("mtu = 1280"); the kernel then refuses the
        // second itself ("mtu=1280"), which it can only know from that ICMP.
        #expect(probe.output.contains("mtu = 1280") || probe.output.contains("mtu=1280"),
                "\(probe.output)\ngen: \(gen.stdout) \(gen.stderr)\n\(r.report)")
        let status = r.stop().status
        #expect(status == 0, "\(r.report)")
        #expect(r.forward.stderr.contains("link eth1 (pb) mtu 1500 -> 1280"), "\(r.report)")
        #expect((snmpValues(r.forward.stdout, "Ip")["FragOKs"] ?? 0) >= 1, "\(r.report)")
    }

    /// `ip link del pb` under load removes the forwarder's egress (and b0 with it). The
    /// forwarder says so once, keeps answering on eth0, and sleeps when idle rather than
    /// polling a dead socket.
    @Test func aDeletedInterfaceIsReportedAndTheOtherLinksKeepServing() throws {
        let r = try router()
        defer { r.lab.destroy() }
        // `ip netns exec` execs the command, so the spawned pid is the forwarder's own.
        let comm = (try? run("/bin/cat", ["/proc/\(r.forward.pid)/comm"]).stdout) ?? ""
        #expect(comm.hasPrefix("datapath"), "pid \(r.forward.pid) is '\(comm)', not the forwarder")
        let gen = try load(r, pps: 100_000, seconds: 6)
        Thread.sleep(forTimeInterval: 2)
        try r.lab.ip(["-n", r.dut, "link", "del", "pb"])
        #expect(waitUntil(timeout: 2) { r.forward.stderr.contains("link eth1 (pb) lost") }, "\(r.report)")
        let near = try ping(r, "198.18.1.1", ["-c", "3", "-i", "0.3", "-W", "1"])
        #expect(near.received >= 2, "\(near.output)\n\(r.report)")
        #expect(r.forward.isRunning, "the forwarder exited after pb was deleted\n\(r.report)")
        gen.wait(timeout: 20)
        let first = cpuSeconds(r.forward.pid)
        Thread.sleep(forTimeInterval: 1)
        let second = cpuSeconds(r.forward.pid)
        if let first, let second {
            #expect(second - first < 0.5, "the idle forwarder used \(second - first) s of CPU in 1 s\n\(r.report)")
        } else {
            Issue.record("cannot read /proc/\(r.forward.pid)/stat\n\(r.report)")
        }
        #expect(r.forward.isRunning, "the forwarder exited after pb was deleted\n\(r.report)")
        let status = r.stop().status
        #expect(status == 0, "\(r.report)")
        let lost = r.forward.stderr.split(separator: "\n").filter { $0.contains("link eth1 (pb) lost") }
        #expect(lost.count == 1, "\(r.report)")
    }
}
