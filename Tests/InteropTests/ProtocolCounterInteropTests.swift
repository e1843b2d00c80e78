import Foundation
import Testing

/// The example packet app, linked against the library, counting real frames on a veth.
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct ProtocolCounterInteropTests {
    @Test func countsKernelPingAndGenFramesByProtocol() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let a = try lab.namespace("a"), b = try lab.namespace("b")
        try lab.veth("a0", in: a, mac: "02:00:00:00:00:01", "b0", in: b, mac: "02:00:00:00:00:02")
        let counter = try lab.spawn(b, NetnsEnvironment.product("protocol-counter"), ["b0", "4"])
        try counter.waitFor("counting on b0")
        let gen = try lab.exec(a, NetnsEnvironment.product("datapath"), [
            "gen", "--dev", "a0", "--src-mac", "02:00:00:00:00:01", "--dst-mac", "02:00:00:00:00:02",
            "--src", "198.18.0.1", "--dst", "198.18.0.2", "--count", "300", "--pps", "10000"])
        #expect(gen.status == 0, "\(gen.stderr)")
        #expect(counter.wait(timeout: 20) == 0, "\(counter.stderr)")
        #expect(counter.stdout.contains("udp 300"), "\(counter.stdout)")
        #expect(counter.stdout.contains("frames 300: ipv4 300"), "\(counter.stdout)")
    }
}
