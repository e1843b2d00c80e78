import Foundation
import Testing

/// `datapath forward` with an L2 configuration between kernel hosts in namespaces this suite
/// makes (198.18.0.0/15 only).
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct ForwardCLIInteropTests {
    let datapath = NetnsEnvironment.product("datapath")

    @Test func aBridgeFromTheCommandLanguageCarriesPingAndShowsItsTablesAtExit() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let dut = try lab.namespace("dut"), a = try lab.namespace("a"), b = try lab.namespace("b")
        try lab.veth("a0", in: a, mac: "02:00:00:00:06:01", "pa", in: dut, mac: "02:00:00:00:07:01")
        try lab.veth("b0", in: b, mac: "02:00:00:00:06:02", "pb", in: dut, mac: "02:00:00:00:07:02")
        try lab.address("198.18.3.1/24", dev: "a0", in: a)
        try lab.address("198.18.3.2/24", dev: "b0", in: b)
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("dp-forward-\(getpid()).conf").path
        defer { try? FileManager.default.removeItem(atPath: config) }
        try """
            # two kernel hosts joined by the stack's bridge
            link add pa type afpacket dev pa
            link add pb type afpacket dev pb
            link add br0 type bridge
            link set pa master br0
            link set pb master br0
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let forward = try lab.spawn(dut, datapath, ["forward", "--config", config, "-e", "addr add 198.18.3.254/24 dev br0",
                                                    "--duration", "4"])
        try forward.waitFor("forward: forwarding")
        let ping = try lab.exec(a, "/usr/bin/ping", ["-c", "3", "-i", "0.2", "-W", "2", "198.18.3.2"], timeout: 20)
        #expect(ping.stdout.contains("3 received"), "\(ping.stdout)")
        #expect(forward.wait(timeout: 20) == 0, "\(forward.stderr)")
        let out = forward.stdout
        #expect(out.contains("Packets/s"), "\(out)")
        #expect(out.contains("br-handle-frame"), "\(out)")
        #expect(out.contains("02:00:00:00:06:01 dev pa master br0 used"), "\(out)")
        #expect(out.contains("02:00:00:00:06:02 dev pb master br0 used"), "\(out)")
        #expect(out.contains(": pa: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo master br0 state UP"), "\(out)")
        // The pools: in the per-second table, and whole again at exit.
        #expect(out.contains("pool node0: ") && out.contains("in use"), "\(out)")
        #expect(out.contains("pools: back at baseline"), "\(out)")
    }

    @Test func aBadConfigurationLineFailsWithItsNumberAndAppliesNothing() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let dut = try lab.namespace("dut")
        let result = try lab.exec(dut, datapath, ["forward", "-e", "link add br0 type bridge",
                                                  "-e", "link set pa master br0", "--duration", "1"])
        #expect(result.status == 2)
        #expect(result.stderr == "datapath: error: line 2: 'pa': no such device (add it with 'link add' first)\n")
        let syntax = try lab.exec(dut, datapath, ["forward", "-e", "link add br0 typ bridge", "--duration", "1"])
        #expect(syntax.status == 2)
        #expect(syntax.stderr == "datapath: error: line 1: expected 'type', got 'typ'\n")
    }
}
