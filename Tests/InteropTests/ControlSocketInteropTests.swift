import Foundation
import Testing

/// `datapath forward --control SOCKET` driven by `datapath ctl` and by a script on the socket,
/// while a kernel ping crosses it (198.18.0.0/15 only; 198.19.0.1 is a second address of host b).
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct ControlSocketInteropTests {
    let datapath = NetnsEnvironment.product("datapath")

    @Test func routesChangeOnTheControlSocketWhileItForwards() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dp-control-\(getpid()).sock").path
        defer { unlink(path) }
        // A stale socket file (its server gone) is replaced.
        let stale = try run("/usr/bin/python3", ["-c", "import socket; s = socket.socket(socket.AF_UNIX); s.bind('\(path)')"])
        #expect(stale.status == 0)
        let router = try RouterLab(options: ["--control", path])
        defer { router.lab.destroy() }
        var info = stat()
        #expect(lstat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        try router.lab.ip(["-n", router.b, "addr", "add", "198.19.0.1/32", "dev", "b0"])
        func ctl(_ arguments: [String]) throws -> CommandResult { try run(datapath, ["ctl", path] + arguments, timeout: 30) }
        func ping() throws -> Bool {
            try router.lab.exec(router.a, "/usr/bin/ping", ["-c", "1", "-W", "1", "198.19.0.1"], timeout: 10).status == 0
        }

        let blackhole = try ctl(["route", "add", "blackhole", "198.19.0.0/16"])
        #expect(blackhole.status == 0 && blackhole.stdout.isEmpty, "\(blackhole.stderr)")
        #expect(try !ping())
        let file = path + ".batch"
        defer { unlink(file) }
        try "route del 198.19.0.0/16\nroute add 198.19.0.0/16 via 198.18.2.2\n".write(toFile: file, atomically: true, encoding: .utf8)
        let batch = try ctl(["--batch", file])
        #expect(batch.status == 0, "\(batch.stderr)")
        #expect(try ping(), "\(router.report)")   // the next packet takes the new route
        let show = try ctl(["route", "show"])
        #expect(show.status == 0 && show.stdout.contains("198.19.0.0/16 via 198.18.2.2 dev eth1\n"), "\(show.stdout)")

        let bad = try ctl(["route", "add", "198.20.0.0/16", "via", "198.18.9.9"])
        #expect(bad.status == 1)
        #expect(bad.stderr == "datapath: error: line 1: '198.18.9.9': gateway not in a connected subnet (add the address first)\n")
        let device = try ctl(["link", "add", "br9", "type", "bridge"])
        #expect(device.status == 1 && device.stderr.contains("devices cannot be added or enslaved while the stack runs"))

        // 100 000 route changes on one connection while a kernel ping crosses: every answer
        // ok, no ping lost (the pinger outlasts the churn, so that they overlap whatever the
        // machine's speed).
        let pinger = try router.lab.spawn(router.a, "/usr/bin/ping", ["-c", "100", "-i", "0.05", "-W", "2", "198.18.2.2"])
        let churn = try run("/usr/bin/python3", ["-c", """
            import socket, time
            s = socket.socket(socket.AF_UNIX)
            s.connect('\(path)')
            f = s.makefile('rw')
            start = time.monotonic()
            answers = []
            for chunk in range(0, 50000, 250):   # written and answered in steps: neither side's buffer fills
                for i in range(chunk, chunk + 250):
                    f.write('route add 10.%d.%d.0/24 via 198.18.2.2\\n' % (i >> 8, i & 255))
                    f.write('route del 10.%d.%d.0/24\\n' % (i >> 8, i & 255))
                f.flush()
                answers += [f.readline().strip() for _ in range(500)]
            elapsed = time.monotonic() - start
            print('ok' if all(a == 'ok' for a in answers) else 'bad', len(answers), '%.0f changes/s' % (100000 / elapsed))
            f.write('x' * 70000 + '\\n')
            f.flush()
            print('oversized:', f.readline().strip())
            """], timeout: 300)
        #expect(churn.stdout.hasPrefix("ok 100000"), "\(churn.stdout)\(churn.stderr)")
        #expect(churn.stdout.contains("oversized: error: request line longer than 65536 bytes"), "\(churn.stdout)")
        #expect(pinger.wait(timeout: 60) == 0, "\(pinger.stdout)")
        #expect(pinger.stdout.contains("100 packets transmitted, 100 received"), "\(pinger.stdout)")
        print("control socket churn: \(churn.stdout)")
        let result = router.stop()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(lstat(path, &info) != 0)   // removed at exit
    }
}
