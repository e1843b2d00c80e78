import Foundation
import Testing

/// `Examples/UDPEcho` (the run-to-completion API as a program) on AF_PACKET, answering a kernel
/// client in a namespace this suite makes (198.18.0.0/15 only).
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct UDPEchoExampleTests {
    let udpEcho = NetnsEnvironment.product("udp-echo")

    /// A kernel client sends datagrams of the edge sizes and 60 random ones up to 65507 bytes
    /// (large ones fragmented both ways) and gets each back byte-exact from 198.18.0.1:7;
    /// the program says what it echoed at exit.
    @Test func theExampleEchoesAKernelClientByteExact() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let host = try lab.namespace("host"), dut = try lab.namespace("dut")
        try lab.veth("h0", in: host, mac: "02:00:00:00:0b:02", "d0", in: dut, mac: "02:00:00:00:0b:01")
        try lab.address("198.18.0.2/24", dev: "h0", in: host)
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("dp-udp-echo-\(getpid()).conf").path
        defer { try? FileManager.default.removeItem(atPath: config) }
        try "link add eth0 type afpacket dev d0\nlink set eth0 up\naddr add 198.18.0.1/24 dev eth0\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let server = try lab.spawn(dut, udpEcho, ["--config", config, "--duration", "30"])
        try server.waitFor("udp-echo: echoing on 198.18.0.1:7")
        let client = try lab.exec(host, "/usr/bin/python3", [
            "-c", UDPInteropTests.echoClientScript(seed: 862, edges: [1, 100, 1472, 1473, 3000, 20000, 65507], random: 60),
        ], timeout: 120)
        #expect(client.stdout.contains("echoed 67 of 67"), "\(client.stdout)\(client.stderr)")
        server.interrupt()
        #expect(server.wait(timeout: 10) == 0, "\(server.stderr)")
        #expect(server.stderr.contains("udp-echo: echoed 67 datagrams, 0 could not be sent back"), "\(server.stderr)")
    }
}
