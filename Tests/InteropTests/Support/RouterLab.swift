import Foundation

/// `datapath forward` as an IPv4 router between two kernel hosts in namespaces of its own
/// (198.18.0.0/15 only):
///
///     [a] a0 198.18.1.2 ──veth── pa [dut: eth0 198.18.1.1 | eth1 198.18.2.1] pb ──veth── b0 198.18.2.2 [b]
///
/// The hosts route 198.18.0.0/15 through the forwarder; it resolves them with ARP.
struct RouterLab {
    let lab: Lab
    let a: String, b: String, dut: String
    let forward: BackgroundCommand

    /// Builds the lab and starts the forwarder with `extra` configuration lines and `options`.
    /// `segmentationOffload` leaves the hosts' TSO on, so their TCP sends 64 KB super-frames
    /// (over veth, as GSO skbs) that the forwarder must carry whole.
    init(_ extra: [String] = [], duration: Int = 60, options: [String] = [], segmentationOffload: Bool = false) throws {
        let lab = try Lab()
        let dut = try lab.namespace("dut"), a = try lab.namespace("a"), b = try lab.namespace("b")
        try lab.veth("a0", in: a, mac: "02:00:00:00:08:01", "pa", in: dut, mac: "02:00:00:00:09:01")
        try lab.veth("b0", in: b, mac: "02:00:00:00:08:02", "pb", in: dut, mac: "02:00:00:00:09:02")
        // Unless told otherwise the hosts segment TCP themselves, so that the other tests see
        // wire-sized packets.
        if !segmentationOffload {
            try lab.exec(a, "/usr/sbin/ethtool", ["-K", "a0", "tso", "off"])
            try lab.exec(b, "/usr/sbin/ethtool", ["-K", "b0", "tso", "off"])
        }
        try lab.address("198.18.1.2/24", dev: "a0", in: a)
        try lab.address("198.18.2.2/24", dev: "b0", in: b)
        try lab.ip(["-n", a, "route", "add", "198.18.0.0/15", "via", "198.18.1.1"])
        try lab.ip(["-n", b, "route", "add", "198.18.0.0/15", "via", "198.18.2.1"])
        var arguments = ["forward", "--duration", String(duration), "-e", "link add eth0 type afpacket dev pa",
                         "-e", "link add eth1 type afpacket dev pb", "-e", "addr add 198.18.1.1/24 dev eth0",
                         "-e", "addr add 198.18.2.1/24 dev eth1"]
        for line in extra { arguments += ["-e", line] }
        arguments += options
        let forward = try lab.spawn(dut, NetnsEnvironment.product("datapath"), arguments)
        try forward.waitFor("forward: forwarding")
        (self.lab, self.a, self.b, self.dut, self.forward) = (lab, a, b, dut, forward)
    }

    /// Stops the forwarder and returns what it printed.
    func stop() -> (status: Int32, stdout: String, stderr: String) {
        forward.interrupt()
        let status = forward.wait(timeout: 20)
        return (status, forward.stdout, forward.stderr)
    }

    /// The forwarder's output so far, for a failing expectation's report.
    var report: String {
        "forward stdout (tail):\n\(forward.stdout.suffix(3000))\nforward stderr (tail):\n\(forward.stderr.suffix(3000))"
    }
}
