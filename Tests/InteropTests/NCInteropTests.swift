import Foundation
import Testing

/// `datapath nc -u` against kernel UDP sockets, in namespaces this suite makes (198.18.0.0/15
/// only): the stack on d0 as 198.18.0.1, a kernel host on h0 as 198.18.0.2.
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct NCInteropTests {
    let datapath = NetnsEnvironment.product("datapath")
    let stack = ["--cmd", "link add eth0 type afpacket dev d0", "--cmd", "addr add 198.18.0.1/24 dev eth0"]

    func lab() throws -> (Lab, host: String, dut: String) {
        let lab = try Lab()
        do {
            let host = try lab.namespace("host"), dut = try lab.namespace("dut")
            try lab.veth("h0", in: host, mac: "02:00:00:00:0c:02", "d0", in: dut, mac: "02:00:00:00:0c:01")
            try lab.address("198.18.0.2/24", dev: "h0", in: host)
            return (lab, host, dut)
        } catch {
            lab.destroy()
            throw error
        }
    }

    /// `nc -u -l --echo` answers a kernel client byte-exact for the edge sizes and 40 random
    /// ones up to 65507 bytes (the large ones fragmented both ways), and a connected kernel
    /// socket sending to a port nobody holds gets ECONNREFUSED from the stack's port unreachable.
    @Test func anEchoListenerAnswersAKernelClientByteExact() throws {
        let (lab, host, dut) = try lab()
        defer { lab.destroy() }
        let nc = try lab.spawn(dut, datapath, ["nc"] + stack + ["-u", "-l", "-p", "7", "--echo", "-w", "60"])
        try nc.waitFor("nc: listening on 0.0.0.0:7")
        let script = UDPInteropTests.echoClientScript(seed: 7, edges: [1, 1472, 1473, 65507], random: 40) + "\n" + """
            refused = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            refused.settimeout(2)
            refused.connect(('198.18.0.1', 9))
            refused.send(b'anyone?')
            try:
                refused.recv(100)
                print('no error')
            except ConnectionRefusedError:
                print('refused')
            """
        let client = try lab.exec(host, "/usr/bin/python3", ["-c", script], timeout: 120)
        #expect(client.stdout.contains("echoed 44 of 44"), "\(client.stdout)\(client.stderr)")
        #expect(client.stdout.contains("refused"), "\(client.stdout)")
        nc.interrupt()
        #expect(nc.wait(timeout: 10) == 0, "\(nc.stderr)")
        #expect(nc.stdout.isEmpty)   // an echo prints nothing
        #expect(nc.stderr.contains("Udp: "), "\(nc.stderr)")
    }

    /// `nc -u HOST PORT` sends its stdin to a kernel server (300 000 bytes, each read one
    /// datagram) and prints only what comes back on stdout; `-q 1` ends it after stdin's end.
    @Test func aKernelServerGetsStdinAndItsAnswersReachStdout() throws {
        let (lab, host, dut) = try lab()
        defer { lab.destroy() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dp-nc-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var random = SystemRandomNumberGenerator()
        let data = Data((0..<300_000).map { _ in UInt8.random(in: 0...255, using: &random) })
        try data.write(to: URL(fileURLWithPath: "\(dir)/in"))
        let server = try lab.spawn(host, "/usr/bin/python3", ["-c", """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)   # SO_RCVBUFFORCE
            s.bind(('198.18.0.2', 9000))
            print('ready', flush=True)
            s.settimeout(5)
            out = open('\(dir)/out', 'wb')
            count = 0
            try:
                while True:
                    data, peer = s.recvfrom(65536)
                    out.write(data)
                    count += 1
                    s.sendto(b'ok%d;' % count, peer)
            except socket.timeout:
                pass
            out.close()
            print('datagrams', count, flush=True)
            """])
        try server.waitFor("ready")
        // The peer's MAC given up front: nc sends its five 64 KiB reads at once, and while ARP
        // resolves, the neighbour's pending queue (212 992 bytes of true size, as Linux's
        // unres_qlen_bytes) holds two datagrams' fragments, not five — Linux loses them too.
        let neighbour = ["--cmd", "neigh add 198.18.0.2 lladdr 02:00:00:00:0c:02 dev eth0"]
        let nc = try lab.exec(dut, "/bin/sh", ["-c", "'\(datapath)' nc " + (stack + neighbour).map { "'\($0)'" }.joined(separator: " ")
                                                  + " -u -q 1 198.18.0.2 9000 < '\(dir)/in'"], timeout: 60)
        #expect(nc.status == 0, "\(nc.stderr)")
        #expect(server.wait(timeout: 20) == 0)
        let received = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out"))
        #expect(received == data, "\(received.count) bytes of \(data.count)")
        let count = Int(server.stdout.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        #expect(count >= 5)   // at least ⌈300 000 / 65 507⌉ reads
        // Every answer, each once (UDP keeps no order: under load two may swap).
        #expect(nc.stdout.split(separator: ";").sorted() == (0..<count).map { "ok\($0 + 1)" }.sorted(), "\(nc.stdout)")
        #expect(nc.stderr.contains("Udp: "), "\(nc.stderr)")
    }

    /// A connected stack socket gets ECONNREFUSED from the kernel's port unreachable: `nc`
    /// says so on stderr and exits 1.
    @Test func aPortUnreachableFromTheKernelEndsNCWithConnectionRefused() throws {
        let (lab, _, dut) = try lab()
        defer { lab.destroy() }
        let nc = try lab.exec(dut, "/bin/sh", ["-c", "echo hello | '\(datapath)' nc " + stack.map { "'\($0)'" }.joined(separator: " ")
                                                  + " -u -q 5 198.18.0.2 9999"], timeout: 30)
        #expect(nc.status == 1, "\(nc.stderr)")
        #expect(nc.stderr.contains("datapath: nc: connection refused by 198.18.0.2:9999"), "\(nc.stderr)")
    }

    @Test func withoutUDPItSaysTCPIsNotThereYet() throws {
        let result = try run(datapath, ["nc", "198.18.0.2", "7"])
        #expect(result.status == 2)
        #expect(result.stderr == "datapath: error: nc: TCP is not implemented yet; use -u for UDP\n")
    }
}
