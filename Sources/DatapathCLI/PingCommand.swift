import ArgumentParser
import CDatapath
import Datapath
import DatapathCore
import DatapathWire
import Foundation
import Synchronization

/// `datapath ping`: ICMP echo over a raw ICMP socket of the stack, printing what iputils'
/// ping prints (the reply lines, ICMP errors quoting our requests, the statistics).
struct PingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Send ICMP echo requests from the stack and print the replies as iputils' ping does.",
        discussion: """
            The stack is configured as for `forward` (--config files, then --cmd commands). \
            Exit status: 0 if a reply came, 1 if none did, 2 on an error.
            """)

    @Option(name: .customLong("config"), help: "A configuration file (may repeat).") var configFiles: [String] = []
    @Option(name: .customLong("cmd"), help: "One configuration command (may repeat; after the files).")
    var commands: [String] = []
    @Option(name: .short, help: "Stop after sending this many requests.") var c: Int?
    @Option(name: .short, help: "Seconds between requests.") var i: Double = 1
    @Option(name: .short, help: "Bytes of data per request.") var s: Int = 56
    @Option(name: .short, help: "The requests' TTL.") var t: UInt8?
    @Option(name: .short, help: "Path MTU discovery: do (set DF, never fragment) or dont (no DF).") var M: String?
    @Option(name: .short, help: "Seconds to wait for replies after the last request.") var W: Double = 10
    @Argument(help: "The IPv4 address to ping.") var destination: String

    func validate() throws {
        guard IPv4Address(destination) != nil else { throw ValidationError("not an IPv4 address: \(destination)") }
        if let c, c < 1 { throw ValidationError("-c must be at least 1") }
        if i <= 0 { throw ValidationError("-i must be positive") }
        if s < 0 || s > 65507 { throw ValidationError("-s must be 0...65507") }
        if let M, M != "do" && M != "dont" && M != "want" { throw ValidationError("-M takes do, dont or want") }
        if W <= 0 { throw ValidationError("-W must be positive") }
    }

    func run() throws {
        installStopSignals()
        let target = IPv4Address(destination)!
        let session = try StackSession(configuration: try loadConfiguration(files: configFiles, commands: commands))
        defer { session.stop() }
        let pmtu: PathMTUDiscovery = M == "do" ? .do : M == "dont" ? .dont : .want
        let socket: RawSocket
        do {
            socket = try RawSocket(session.stack, protocol: .icmp, options: RawSocketOptions(ttl: t, pathMTUDiscovery: pmtu))
        } catch { throw CLIError(error) }
        socket.setFilter(ICMPFilter(passing: [.echoReply, .destinationUnreachable, .timeExceeded, .parameterProblem]))
        let identifier = UInt16(truncatingIfNeeded: getpid())
        let state = PingState()
        say("PING \(target) (\(target)) \(s)(\(s + 28)) bytes of data.")
        let receiver = Task.detached { await state.receive(from: socket, identifier: identifier, target: target) }

        let start = monotonicSeconds()
        var sequence: UInt16 = 0
        var nextSend = start
        var lastSend = start
        while !stopRequested.load(ordering: .relaxed) {
            let now = monotonicSeconds()
            let sentAll = c.map { Int(sequence) >= $0 } ?? false
            if sentAll {
                // Done when every request is answered (or errored), or W seconds after the last.
                if state.outstanding(sent: Int(sequence)) == 0 || now - lastSend >= W { break }
            } else if now >= nextSend {
                sequence &+= 1
                let packet = PingState.echoRequest(identifier: identifier, sequence: sequence, size: s)
                state.sent(sequence, at: now)
                var queued = false
                while !queued && !stopRequested.load(ordering: .relaxed) {
                    let result = packet.withUnsafeBytes { bytes in
                        Result { () throws(SocketError) in try socket.trySend(bytes, to: target) }
                    }
                    switch result {
                    case .success: queued = true
                    case .failure(.wouldBlock): usleep(1000)
                    case .failure(let error):
                        state.localError(error)
                        queued = true
                    }
                }
                lastSend = now
                nextSend += i
            }
            usleep(1000)
        }
        let elapsed = monotonicSeconds() - start
        socket.close()
        receiver.cancel()
        say(state.summary(target: target, transmitted: Int(sequence), milliseconds: Int(elapsed * 1000)))
        printError(session.stack.ipv4.icmp.statistics.snmpLines())
        if state.received == 0 { throw ExitCode(1) }
    }
}

/// What ping's sender and receiver share: send times, replies, errors, round-trip times.
final class PingState: @unchecked Sendable {
    private let lock = Lock<Inner>(Inner())
    struct Inner {
        var sentAt: [UInt16: Double] = [:]
        var answered = Set<UInt16>()
        var received = 0
        var errors = 0
        var rtts: [Double] = []
        /// The summary was made: replies that arrive later are not printed.
        var finished = false
    }

    var received: Int { lock.withLock { $0.received } }

    func sent(_ sequence: UInt16, at time: Double) { lock.withLock { $0.sentAt[sequence] = time } }

    /// Requests neither answered nor reported as errors.
    func outstanding(sent: Int) -> Int { lock.withLock { sent - $0.answered.count } }

    /// A send the stack refused (`ping: local error: …`, as iputils says it).
    func localError(_ error: SocketError) {
        if case .messageTooLong(_, let mtu) = error {
            say("ping: local error: message too long, mtu=\(mtu)")
        } else {
            say("ping: local error: \(error)")
        }
        lock.withLock { $0.errors += 1 }
    }

    /// An echo request: type 8, the identifier and sequence, 16 bytes of send time when there
    /// is room (as iputils puts a timeval there), then the pattern 0x10, 0x11, …
    static func echoRequest(identifier: UInt16, sequence: UInt16, size: Int) -> [UInt8] {
        var packet: [UInt8] = [8, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xFF),
                               UInt8(sequence >> 8), UInt8(sequence & 0xFF)]
        packet += (0..<size).map { UInt8(truncatingIfNeeded: 0x10 &+ $0) }
        if size >= 16 {
            let now = CDatapath_monotonic_ns()
            withUnsafeBytes(of: now.littleEndian) { packet.replaceSubrange(8..<16, with: $0) }
        }
        let sum = ~InternetChecksum.fold(packet.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: $0.count) })
        packet[2] = UInt8(sum >> 8)
        packet[3] = UInt8(sum & 0xFF)
        return packet
    }

    /// The receive loop: echo replies to our identifier and ICMP errors quoting our requests.
    func receive(from socket: RawSocket, identifier: UInt16, target: IPv4Address) async {
        while true {
            do throws(SocketError) {
                let datagram = try await socket.receive()
                handle(datagram, identifier: identifier, at: monotonicSeconds())
            } catch .closed {
                return
            } catch {
                localError(error)
            }
        }
    }

    func handle(_ datagram: RawDatagram, identifier: UInt16, at now: Double) {
        let packet = datagram.packet
        let headerLength = Int(packet[0] & 0x0F) * 4
        guard packet.count >= headerLength + 8 else { return }
        let icmp = Array(packet[headerLength...])
        let type = icmp[0], code = icmp[1]
        func word(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        if type == 0 {
            guard word(icmp, 4) == identifier else { return }
            let sequence = word(icmp, 6)
            // Counted and printed under the lock, so the summary (which takes it) never comes
            // before the line of a reply it counts, and nothing is printed after it.
            lock.withLock { inner in
                guard !inner.finished, let sentAt = inner.sentAt[sequence] else { return }
                let duplicate = !inner.answered.insert(sequence).inserted
                let ms = (now - sentAt) * 1000
                if !duplicate {
                    inner.received += 1
                    inner.rtts.append(ms)
                }
                say("\(icmp.count) bytes from \(datagram.source): icmp_seq=\(sequence) ttl=\(packet[8]) time=\(PingState.format(ms)) ms\(duplicate ? " (DUP!)" : "")")
            }
            return
        }
        // An error quoting one of our requests: the quoted IP header, then our ICMP header.
        guard type == 3 || type == 11 || type == 12, icmp.count >= 8 + 20 + 8 else { return }
        let quoted = Array(icmp[8...])
        let quotedLength = Int(quoted[0] & 0x0F) * 4
        guard quoted[9] == 1, quoted.count >= quotedLength + 8, quoted[quotedLength] == 8,
              word(quoted, quotedLength + 4) == identifier else { return }
        let sequence = word(quoted, quotedLength + 6)
        lock.withLock { inner in
            guard !inner.finished else { return }
            inner.errors += 1
            inner.answered.insert(sequence)
            say("From \(datagram.source) icmp_seq=\(sequence) \(PingState.describe(type: type, code: code, mtu: word(icmp, 6)))")
        }
    }

    /// iputils' words for an ICMP error.
    static func describe(type: UInt8, code: UInt8, mtu: UInt16) -> String {
        switch (type, code) {
        case (3, 0): "Destination Net Unreachable"
        case (3, 1): "Destination Host Unreachable"
        case (3, 2): "Destination Protocol Unreachable"
        case (3, 3): "Destination Port Unreachable"
        case (3, 4): "Frag needed and DF set (mtu = \(mtu))"
        case (3, 13): "Packet filtered"
        case (3, _): "Dest Unreachable, Bad Code: \(code)"
        case (11, 0): "Time to live exceeded"
        case (11, 1): "Frag reassembly time exceeded"
        case (11, _): "Time exceeded, Bad Code: \(code)"
        default: "Parameter problem: pointer = \(mtu >> 8)"
        }
    }

    /// A time as iputils prints it: three decimals below 1 ms, two below 10, one below 100.
    static func format(_ ms: Double) -> String {
        ms < 1 ? String(format: "%.3f", ms) : ms < 10 ? String(format: "%.2f", ms)
            : ms < 100 ? String(format: "%.1f", ms) : String(Int(ms))
    }

    /// The closing lines, as iputils prints them.
    func summary(target: IPv4Address, transmitted: Int, milliseconds: Int) -> String {
        lock.withLock { inner in
            inner.finished = true
            let loss = transmitted == 0 ? 0 : Double(transmitted - inner.received) * 100 / Double(transmitted)
            var text = "\n--- \(target) ping statistics ---\n\(transmitted) packets transmitted, \(inner.received) received, "
            if inner.errors > 0 { text += "+\(inner.errors) errors, " }
            text += String(format: "%g%% packet loss, time %dms", loss, milliseconds)
            if !inner.rtts.isEmpty {
                let avg = inner.rtts.reduce(0, +) / Double(inner.rtts.count)
                let mdev = (inner.rtts.map { ($0 - avg) * ($0 - avg) }.reduce(0, +) / Double(inner.rtts.count)).squareRoot()
                text += String(format: "\nrtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms", inner.rtts.min()!, avg, inner.rtts.max()!, mdev)
            }
            return text
        }
    }
}
