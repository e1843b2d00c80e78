import Datapath
import Logging
import DatapathCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `forward --control SOCKET`: a Unix stream socket that takes the command language while the
/// stack forwards — how a routing daemon or a script drives it (in the spirit of `ip -batch`).
///
/// Protocol, one request per line, one answer each: a command (`route add …`, `neigh add …`,
/// `addr add …`, `filter add …`, `link set DEV up|down|mtu N`) is applied — all or nothing, one
/// FIB publication — and answered `ok` or `error: <the exact error>`; `batch` … `end` applies
/// the lines between as one configuration and answers once; `route show` (`route show
/// summary`) and `show` (the stage table) answer with their text and then `ok`. A line over
/// 64 KiB, or a batch over 2 000 000 lines or 256 MiB, is answered with an error and the connection
/// closed; nothing a client sends stops forwarding. Whoever can write to the socket controls
/// the router: it is created mode 0600 (0660 with a group); a stale socket file (nobody
/// listening) is replaced, anything else at the path is refused.
final class ControlServer: @unchecked Sendable {
    let path: String
    let fd: Int32
    let stack: Stack
    let show: @Sendable () -> String
    /// One request applied at a time, whichever connection it came on.
    let applying = Lock<Void>(())
    let stopped = Atomic<Bool>(false)
    static let maximumLine = 65536
    static let maximumBatch = 2_000_000
    static let maximumBatchBytes = 256 << 20

    init(path: String, group: String?, stack: Stack, show: @escaping @Sendable () -> String) throws {
        self.path = path
        self.stack = stack
        self.show = show
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw CLIError("control socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        try ControlServer.removeStale(path, address: address)
        // A client that hangs up before its answer must not end the router.
        signal(SIGPIPE, SIG_IGN)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw CLIError("control socket: \(String(cString: strerror(errno)))") }
        // Created with no access for anyone else from the start (no window before chmod).
        let mask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(mask)
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw CLIError("control socket \(path): \(reason)")
        }
        if let group {
            guard let entry = getgrnam(group) else {
                close(fd)
                unlink(path)
                throw CLIError("no such group: \(group)")
            }
            guard chown(path, getuid(), entry.pointee.gr_gid) == 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(path)
                throw CLIError("control socket \(path): chown to group \(group): \(reason)")
            }
            _ = chmod(path, 0o660)
        }
        guard listen(fd, 16) == 0 else {
            close(fd)
            unlink(path)
            throw CLIError("control socket \(path): listen: \(String(cString: strerror(errno)))")
        }
    }

    /// Removes a socket file at `path` that no process listens on; refuses a live one or a
    /// file of another kind.
    static func removeStale(_ path: String, address: sockaddr_un) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw CLIError("\(path) exists and is not a socket: not replacing it")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(probe) }
        var address = address
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected == 0 { throw CLIError("control socket \(path) is in use by another process") }
        // Only a socket nobody listens on is stale; any other failure (no permission) leaves it.
        guard errno == ECONNREFUSED else {
            throw CLIError("control socket \(path) exists and cannot be probed: \(String(cString: strerror(errno)))")
        }
        unlink(path)
    }

    /// Serves connections on a thread of their own each until `stop`.
    func start() {
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                Thread.detachNewThread { [self] in serve(client) }
            }
        }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }

    /// Reads requests line by line from `client` and answers each. The answers to what one
    /// read brought go out in one write, after its last complete line (a client that pipelines
    /// its requests pays one system call per read, not one per request; one that waits for
    /// each answer gets it at once, since nothing more was read).
    func serve(_ client: Int32) {
        defer { close(client) }
        var pending: [UInt8] = []
        var answers: [UInt8] = []
        var batch: [String]?
        var batchBytes = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        func reply(_ text: String) {
            guard !text.isEmpty else { return }
            answers += text.utf8
            answers.append(UInt8(ascii: "\n"))
        }
        func flush() {
            guard !answers.isEmpty else { return }
            answers.withUnsafeBytes { writeAll(client, $0) }
            answers.removeAll(keepingCapacity: true)
        }
        defer { flush() }
        while !stopped.load(ordering: .relaxed) {
            let n = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            pending += buffer[0..<n]
            var start = 0   // the first byte of pending not consumed (one compaction per read)
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                if newline - start > ControlServer.maximumLine {
                    reply("error: request line longer than \(ControlServer.maximumLine) bytes")
                    return
                }
                let line = String(decoding: pending[start..<newline], as: UTF8.self)
                start = newline + 1
                if batch != nil {
                    if line.trimmingCharacters(in: .whitespaces) == "end" {
                        let text = batch!.joined(separator: "\n")
                        batch = nil
                        batchBytes = 0
                        reply(apply(text, logLevel: .notice))
                    } else if batch!.count >= ControlServer.maximumBatch || batchBytes + line.utf8.count > ControlServer.maximumBatchBytes {
                        reply("error: batch larger than \(ControlServer.maximumBatch) lines or \(ControlServer.maximumBatchBytes >> 20) MiB")
                        return
                    } else {
                        batchBytes += line.utf8.count + 1
                        batch!.append(line)   // in place: no copy of the lines so far
                    }
                    continue
                }
                reply(answer(line, batch: &batch))
            }
            pending.removeFirst(start)
            flush()
            if pending.count > ControlServer.maximumLine {
                reply("error: request line longer than \(ControlServer.maximumLine) bytes")
                return
            }
        }
    }

    /// The answer to one line outside a batch.
    func answer(_ line: String, batch: inout [String]?) -> String {
        // Route changes, what a routing daemon sends by the thousand, go straight to the parser.
        if line.utf8.starts(with: "route add ".utf8) || line.utf8.starts(with: "route del ".utf8) {
            return apply(line, logLevel: .info)
        }
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        switch words {
        case []: return "ok"
        case ["batch"]:
            batch = []
            return ""
        case ["show"]: return show() + "\nok"
        case ["route", "show"]: return applying.withLock { _ in stack.showRoutes() } + "\nok"
        case ["route", "show", "summary"]: return applying.withLock { _ in stack.showRouteSummary() } + "\nok"
        default: return apply(line, logLevel: .info)
        }
    }

    /// Applies configuration text: `ok`, or `error: ` and the configuration error. A batch is
    /// logged at notice level, a single line at info (below what the CLI prints).
    func apply(_ text: String, logLevel: Logger.Level) -> String {
        applying.withLock { _ in
            do {
                try stack.apply(text, logLevel: logLevel)
                return "ok"
            } catch {
                return "error: \(error)"
            }
        }
    }
}
