import Testing
import Datapath
import DatapathCore
import DatapathWire
import Logging
import Synchronization

/// A log handler that keeps what it is given, for tests.
final class LogRecorder: @unchecked Sendable {
    let lines = Lock<[(Logger.Level, String)]>([])

    var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(recorder: self) }
        logger.logLevel = .trace
        return logger
    }

    func messages(atLeast level: Logger.Level = .trace) -> [String] {
        lines.withLock { $0.filter { $0.0 >= level }.map(\.1) }
    }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            recorder.lines.withLock { $0.append((event.level, "\(event.message)")) }
        }
    }
}

/// Control-plane events reach the stack's logger — never anything per packet.
@Suite struct ControlEventLogTests {
    @Test func aConfigurationAppliedAndEachFIBPublicationAreReported() throws {
        let log = LogRecorder()
        let stack = Stack(logger: log.logger)
        let pool = try PacketPool(capacity: 64)
        let (a, _) = MemoryDevice.pair("a", mac(1), "wa", mac(2))
        try stack.addDevice(a)
        _ = pool
        try stack.apply("""
            addr add 198.18.1.1/24 dev a
            route add 198.19.0.0/16 via 198.18.1.2
            """)
        let notices = log.messages(atLeast: .notice)
        #expect(notices == ["configuration applied: 2 commands, 4 routes"])
        #expect(log.messages().contains { $0.hasPrefix("FIB generation ") && $0.hasSuffix(": 4 routes") })
        #expect(log.messages(atLeast: .info).count == 1)   // publications are debug only
    }

    @Test func aBondFailoverIsReported() throws {
        let log = LogRecorder()
        let stack = Stack(logger: log.logger)
        let pool = try PacketPool(capacity: 64)
        let worker = Worker(pool: pool)
        let (a, _) = MemoryDevice.pair("a", mac(1), "wa", mac(2))
        let (b, _) = MemoryDevice.pair("b", mac(3), "wb", mac(4))
        try stack.addDevice(a)
        try stack.addDevice(b)
        try stack.apply("""
            link add bond0 type bond mode active-backup
            link set a master bond0
            link set b master bond0
            """)
        stack.housekeeping(worker: worker)
        try stack.setUp("a", false)
        stack.housekeeping(worker: worker)
        try stack.setUp("b", false)
        stack.housekeeping(worker: worker)
        let lines = log.messages(atLeast: .notice).filter { $0.hasPrefix("bond0") }
        #expect(lines == ["bond0: b is the active slave now (was a)",
                          "bond0: no slave has link; the bond drops what it sends"])
        stack.housekeeping(worker: worker)
        #expect(log.messages(atLeast: .notice).filter { $0.hasPrefix("bond0") }.count == 2)   // once per change
    }

    /// Three addresses fail within a second: one line for the first, the others counted in the
    /// next line a second later.
    @Test func neighboursGoingFailedAreReportedAtMostOnceASecond() throws {
        let lab = try NeighbourLab()
        let log = LogRecorder()
        lab.neighbours.logger = log.logger
        for host in 2...4 {
            let neighbour = lab.neighbours.lookupOrCreate(IPv4Address(198, 18, 0, UInt8(host)), device: lab.eth0)!
            lab.output([1], via: neighbour)
        }
        for _ in 0..<6 { lab.advance(seconds: 0.5) }
        _ = lab.sent()
        var lines = log.messages(atLeast: .notice)
        #expect(lines.count == 1)
        #expect(["2", "3", "4"].map { "neighbour 198.18.0.\($0) dev eth0 FAILED: no answer to 3 probes" }
            .contains(lines.first ?? ""))
        let late = lab.neighbours.lookupOrCreate(IPv4Address(198, 18, 0, 9), device: lab.eth0)!
        lab.output([1], via: late)
        for _ in 0..<8 { lab.advance(seconds: 0.5) }
        _ = lab.sent()
        lines = log.messages(atLeast: .notice)
        #expect(lines.count == 2)
        #expect(lines.last == "neighbour 198.18.0.9 dev eth0 FAILED: no answer to 3 probes (and 2 more since the last report)")
    }
}
