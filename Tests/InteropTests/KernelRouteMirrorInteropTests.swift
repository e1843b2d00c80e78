import Foundation
import Testing

/// `datapath forward --mirror-kernel-routes`: routes installed into the forwarder's namespace's
/// kernel — by hand with `ip route`, and by BIRD's static protocol — become the datapath's, and
/// go when the kernel's go, while a kernel ping crosses (198.18.0.0/15 only; 198.19.0.1 and
/// 198.19.1.1 are addresses of host b). As with VPP's linux-cp, the control plane sees the
/// stack's links as kernel interfaces of the same names: eth0 and eth1 in the forwarder's
/// namespace (veths with their peers there too: this kernel has no dummy driver) carry its
/// addresses, so the kernel (and BIRD) can resolve gateways.
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct KernelRouteMirrorInteropTests {
    let datapath = NetnsEnvironment.product("datapath")

    @Test func routesFromIPRouteAndBirdDriveTheDatapath() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dp-mirror-\(getpid()).sock").path
        let birdSocket = FileManager.default.temporaryDirectory.appendingPathComponent("dp-bird-\(getpid()).ctl").path
        let birdConfig = FileManager.default.temporaryDirectory.appendingPathComponent("dp-bird-\(getpid()).conf").path
        defer {
            unlink(path)
            unlink(birdSocket)
            unlink(birdConfig)
        }
        let router = try RouterLab(options: ["--mirror-kernel-routes", "--control", path])
        defer { router.lab.destroy() }
        let lab = router.lab, dut = router.dut
        for (name, address) in [("eth0", "198.18.1.1/24"), ("eth1", "198.18.2.1/24")] {
            try lab.ip(["-n", dut, "link", "add", name, "type", "veth", "peer", "name", "\(name)-cp"])
            for device in [name, "\(name)-cp"] {
                _ = try lab.exec(dut, "/usr/sbin/sysctl", ["-qw", "net.ipv6.conf.\(device).disable_ipv6=1"])
                try lab.ip(["-n", dut, "link", "set", device, "up"])
            }
            try lab.ip(["-n", dut, "addr", "add", address, "dev", name])
        }
        try lab.ip(["-n", router.b, "addr", "add", "198.19.0.1/32", "dev", "b0"])
        try lab.ip(["-n", router.b, "addr", "add", "198.19.1.1/32", "dev", "b0"])
        func routes() -> String { (try? run(datapath, ["ctl", path, "route", "show"], timeout: 30).stdout) ?? "" }
        func ping(_ address: String) throws -> Bool {
            try lab.exec(router.a, "/usr/bin/ping", ["-c", "1", "-W", "1", address], timeout: 10).status == 0
        }
        #expect(try !ping("198.19.0.1"))

        // By hand: added, then deleted.
        try lab.ip(["-n", dut, "route", "add", "198.19.0.0/24", "via", "198.18.2.2", "dev", "eth1", "metric", "7"])
        #expect(waitUntil(timeout: 10) { routes().contains("198.19.0.0/24 via 198.18.2.2 dev eth1 metric 7") },
                "\(routes())\n\(router.report)")
        #expect(try ping("198.19.0.1"), "\(router.report)")
        try lab.ip(["-n", dut, "route", "del", "198.19.0.0/24", "metric", "7"])
        #expect(waitUntil(timeout: 10) { !routes().contains("198.19.0.0/24") }, "\(routes())")
        #expect(try !ping("198.19.0.1"))
        // A permanent neighbour.
        try lab.ip(["-n", dut, "neigh", "add", "198.18.2.9", "lladdr", "02:00:00:00:0c:09", "dev", "eth1", "nud", "permanent"])

        // BIRD's static routes, exported to the kernel's main table.
        try """
            router id 198.18.2.1;
            protocol device { }
            protocol kernel { ipv4 { export all; }; }
            protocol static {
                ipv4;
                route 198.19.0.0/24 via 198.18.2.2;
                route 198.19.1.0/24 via 198.18.2.2;
            }
            """.write(toFile: birdConfig, atomically: true, encoding: .utf8)
        let bird = try lab.spawn(dut, "/usr/sbin/bird", ["-f", "-c", birdConfig, "-s", birdSocket])
        #expect(waitUntil(timeout: 20) {
            let table = routes()
            return table.contains("198.19.0.0/24 via 198.18.2.2 dev eth1") && table.contains("198.19.1.0/24 via 198.18.2.2 dev eth1")
        }, "\(routes())\nbird: \(bird.stderr)\n\(router.report)")
        #expect(try ping("198.19.0.1") && ping("198.19.1.1"), "\(router.report)")
        // BIRD withdraws its routes from the kernel as it shuts down (`birdc down`: SIGINT
        // would be a graceful restart, which leaves them); the datapath follows.
        let down = try lab.exec(dut, "/usr/sbin/birdc", ["-s", birdSocket, "down"], timeout: 20)
        #expect(down.status == 0, "\(down.stdout)\(down.stderr)")
        #expect(bird.wait(timeout: 20) == 0, "\(bird.stderr)")
        #expect(waitUntil(timeout: 10) { !routes().contains("198.19.1.0/24") }, "\(routes())")

        let (status, stdout, stderr) = router.stop()
        #expect(status == 0, "\(stderr)")
        #expect(stdout.contains("kernel route mirror: ") && stdout.contains(", 0 refused"), "\(stdout)")
        #expect(stdout.contains("198.18.2.9 dev eth1 lladdr 02:00:00:00:0c:09 PERMANENT"), "\(stdout)")
    }
}
