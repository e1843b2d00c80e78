import ArgumentParser
import Datapath
import DatapathCore
import DatapathWire
import Foundation
import Synchronization

/// `datapath nc`: netcat over the stack. The stack comes up from the configuration as for
/// `forward`; then stdin goes to the peer and what arrives goes to stdout — only that: status
/// and counters go to stderr. UDP only until TCP lands.
struct NCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nc",
        abstract: "netcat over the stack: stdin to the peer, what arrives to stdout (UDP: -u).",
        discussion: """
            The stack is configured as for `forward` (--config files, then --cmd commands). \
            Each read of stdin is one datagram. A listener (-l) answers the first peer that \
            sends to it; with --echo it sends every datagram back to its sender instead of \
            printing it. Example:
              datapath nc --cmd 'link add eth0 type afpacket dev veth0' \\
                          --cmd 'addr add 198.18.0.1/24 dev eth0' -u -l -p 7 --echo
            """)

    @Option(name: .customLong("config"), help: "A configuration file (may repeat).") var configFiles: [String] = []
    @Option(name: .customLong("cmd"), help: "One configuration command (may repeat; after the files).")
    var commands: [String] = []
    @Flag(name: .short, help: "UDP (required until TCP lands).") var u = false
    @Flag(name: .short, help: "Listen for a peer instead of connecting to HOST PORT.") var l = false
    @Option(name: .short, help: "The local port (the one to listen on with -l).") var p: UInt16?
    @Option(name: .short, help: "The local address to send from and receive on.") var s: String?
    @Option(name: .short, help: "Quit after this many seconds with nothing sent or received.") var w: Double?
    @Option(name: .short, help: "Quit this many seconds after stdin's end (without it: keep receiving).") var q: Double?
    @Flag(help: "Send what arrives back to its sender instead of printing it.") var echo = false
    @Argument(help: "The peer's IPv4 address (not with -l).") var host: String?
    @Argument(help: "The peer's port (not with -l).") var port: UInt16?

    func validate() throws {
        guard u else { throw ValidationError("nc: TCP is not implemented yet; use -u for UDP") }
        if let s, IPv4Address(s) == nil { throw ValidationError("-s: not an IPv4 address: \(s)") }
        if l {
            guard p != nil else { throw ValidationError("-l needs -p PORT") }
            guard host == nil else { throw ValidationError("-l takes no HOST PORT") }
        } else {
            guard let host, IPv4Address(host) != nil else { throw ValidationError("give the peer as HOST PORT (an IPv4 address and a port)") }
            guard let port, port != 0 else { throw ValidationError("give the peer's PORT (1-65535)") }
            if echo { throw ValidationError("--echo needs -l") }
        }
        if let w, w <= 0 { throw ValidationError("-w must be positive") }
        if let q, q < 0 { throw ValidationError("-q must not be negative") }
    }

    func run() throws {
        installStopSignals()
        let session = try StackSession(configuration: try loadConfiguration(files: configFiles, commands: commands))
        defer { session.stop() }
        let local = SocketAddress(s.flatMap(IPv4Address.init) ?? .zero, p ?? 0)
        let socket: UDPSocket
        do { socket = try UDPSocket(session.stack, bind: local) } catch { throw CLIError(error) }
        let state = NCState()
        if let host, let port {
            let peer = SocketAddress(IPv4Address(host)!, port)
            do { try socket.connect(to: peer) } catch { throw CLIError(error) }
            state.peer.withLock { $0 = peer }
        }
        printError("nc: \(l ? "listening on" : "sending from") \(socket.local)")

        // What arrives: to stdout, or back to its sender (--echo). A listener locks onto the
        // first peer, as netcat does.
        let receiver = Task.detached { [echo, l] in
            do throws(SocketError) {
                while true {
                    let datagram = try await socket.receive()
                    state.touch()
                    if echo {
                        try await socket.send(datagram.payload, to: datagram.remote)
                        continue
                    }
                    if l && state.peer.withLock({ $0 }) == nil {
                        state.peer.withLock { $0 = datagram.remote }
                        try socket.connect(to: datagram.remote)
                        printError("nc: peer \(datagram.remote)")
                    }
                    datagram.payload.withUnsafeBytes { writeAll(1, $0) }
                }
            } catch .closed {
            } catch {
                state.fail(error)
            }
        }
        // stdin: one datagram per read, to the peer once there is one.
        if !echo {
            Thread.detachNewThread { state.pump(stdin: 0, to: socket) }
        }
        while !stopRequested.load(ordering: .relaxed) {
            let now = monotonicSeconds()
            if state.failure.withLock({ $0 }) != nil { break }
            if let q, let eof = state.eof.withLock({ $0 }), now - eof >= q { break }
            if let w, now - state.lastActivity.withLock({ $0 }) >= w { break }
            usleep(10_000)
        }
        socket.close()
        receiver.cancel()
        printError(session.stack.udp.statistics.snmpLines())
        if let failure = state.failure.withLock({ $0 }) {
            printError("datapath: nc: \(failure)")
            throw ExitCode(1)
        }
    }
}

/// What the threads of `nc` share.
final class NCState: Sendable {
    let peer = Lock<SocketAddress?>(nil)
    let failure = Lock<SocketError?>(nil)
    /// When stdin ended (monotonic seconds).
    let eof = Lock<Double?>(nil)
    let lastActivity = Lock<Double>(monotonicSeconds())

    func touch() { lastActivity.withLock { $0 = monotonicSeconds() } }

    func fail(_ error: SocketError) { failure.withLock { if $0 == nil { $0 = error } } }

    /// Reads `fd` until its end, sending each read as one datagram to the peer (waiting for
    /// one, and for room in the send buffer).
    func pump(stdin fd: Int32, to socket: UDPSocket) {
        var buffer = [UInt8](repeating: 0, count: UDP.maximumPayload)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                eof.withLock { $0 = monotonicSeconds() }
                return
            }
            touch()
            while peer.withLock({ $0 }) == nil {
                if stopRequested.load(ordering: .relaxed) { return }
                usleep(10_000)
            }
            while true {
                let result = buffer.withUnsafeBytes { bytes in
                    Result { () throws(SocketError) in try socket.trySend(UnsafeRawBufferPointer(rebasing: bytes[0..<n])) }
                }
                switch result {
                case .success: break
                case .failure(.wouldBlock):
                    usleep(200)
                    continue
                case .failure(.closed): return
                case .failure(let error):
                    fail(error)
                    return
                }
                break
            }
        }
    }
}

/// Writes all of `bytes` to `fd`.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n <= 0 { return }
        offset += n
    }
}
