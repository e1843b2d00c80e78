import Datapath
import DatapathCore
import Foundation
import Synchronization

/// `udp-echo --config FILE [--port PORT] [--workers N] [--duration SECONDS]`: brings a stack up
/// from a configuration in the command language (as `datapath forward` does), echoes UDP on
/// every local address at PORT (default 7) until SIGINT/SIGTERM or the duration, and prints
/// what it echoed and the `Udp:` counters at exit.
@main
struct UDPEchoMain {
    static let usage = "usage: udp-echo --config FILE [--port PORT] [--workers N] [--duration SECONDS]"

    static func main() {
        var config: String?, port: UInt16 = 7, workers = 1, duration: Double?
        var arguments = CommandLine.arguments.dropFirst()
        while let option = arguments.popFirst() {
            let value = arguments.popFirst()
            switch (option, value) {
            case ("--config", let v?): config = v
            case ("--port", let v?) where UInt16(v) != nil: port = UInt16(v)!
            case ("--workers", let v?) where (Int(v) ?? 0) >= 1: workers = Int(v)!
            case ("--duration", let v?) where (Double(v) ?? 0) > 0: duration = Double(v)!
            default: fail(usage)
            }
        }
        guard let config, let text = try? String(contentsOfFile: config, encoding: .utf8) else {
            fail(config == nil ? usage : "udp-echo: cannot read \(config!)")
        }
        do {
            try run(configuration: text, port: port, workers: workers, duration: duration)
        } catch {
            fail("udp-echo: \(error)")
        }
    }

    static func run(configuration: String, port: UInt16, workers: Int, duration: Double?) throws {
        signal(SIGINT) { _ in stop.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in stop.store(true, ordering: .relaxed) }
        let stack = Stack(workers: workers)
        try stack.apply(configuration)
        let group = WorkerGroup(core: stack.core, pools: try PacketPool.perNode(capacity: 8192 * workers),
                                count: workers)
        group.pollAllQueues(of: stack.receivingDevices)
        stack.start(on: group)
        let server = try UDPEchoServer(stack: stack, local: .any(port: port))
        group.start()
        let addresses = stack.addresses.all.map { "\($0.address):\(server.local.port)" }.joined(separator: ", ")
        report("udp-echo: echoing on \(addresses)")
        let start = Date()
        while !stop.load(ordering: .relaxed) {
            if let duration, Date().timeIntervalSince(start) >= duration { break }
            usleep(20_000)
        }
        group.stop()
        server.close()
        let (echoed, failed) = server.counts
        report("udp-echo: echoed \(echoed) datagrams, \(failed) could not be sent back")
        report(stack.udp.statistics.snmpLines())
    }
}

let stop = Atomic<Bool>(false)

func report(_ line: String) { FileHandle.standardError.write((line + "\n").data(using: .utf8)!) }

func fail(_ line: String) -> Never {
    report(line)
    exit(2)
}
