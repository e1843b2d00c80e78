import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The result of a finished command.
struct CommandResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// A child process with its stdout and stderr collected by a reader thread. Built on
/// posix_spawn and poll(2) rather than Foundation's Process, whose pipe reads trap on EINTR
/// when other children exit.
final class BackgroundCommand: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var out: [UInt8] = []
    private var err: [UInt8] = []
    private var exitStatus: Int32?
    private let readerDone = DispatchSemaphore(value: 0)

    init(_ executable: String, _ arguments: [String]) throws {
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            throw LabError("pipe: \(String(cString: strerror(errno)))")
        }
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // The spawning thread may block or ignore signals (test runners do): the child starts
        // with an empty mask and default dispositions, so SIGINT reaches it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        close(outPipe[1])
        close(errPipe[1])
        guard rc == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw LabError("cannot run \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
        let (outFD, errFD) = (outPipe[0], errPipe[0])
        Thread.detachNewThread { [self] in
            readAll(outFD, errFD)
            readerDone.signal()
        }
    }

    private func readAll(_ outFD: Int32, _ errFD: Int32) {
        var fds = [pollfd(fd: outFD, events: Int16(POLLIN), revents: 0), pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)]
        var open = 2
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open > 0 {
            let n = poll(&fds, 2, 1000)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { continue }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let got = buffer.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress, $0.count) }
                if got < 0 && errno == EINTR { continue }
                if got <= 0 {
                    close(fds[i].fd)
                    fds[i].fd = -1
                    open -= 1
                    continue
                }
                lock.lock()
                if i == 0 { out += buffer[0..<got] } else { err += buffer[0..<got] }
                lock.unlock()
            }
        }
    }

    var stdout: String { lock.lock(); defer { lock.unlock() }; return String(decoding: out, as: UTF8.self) }
    var stderr: String { lock.lock(); defer { lock.unlock() }; return String(decoding: err, as: UTF8.self) }

    /// The exit status (128 + signal when killed), or nil while running.
    var status: Int32? {
        lock.lock(); defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var raw: Int32 = 0
        let r = waitpid(pid, &raw, WNOHANG)
        guard r == pid else { return nil }
        let code = (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
        exitStatus = code
        return code
    }

    var isRunning: Bool { status == nil }

    /// Waits until stdout or stderr (where servers report readiness) contains `text`; throws
    /// after `timeout` seconds or if the process ends.
    func waitFor(_ text: String, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stdout.contains(text) || stderr.contains(text) { return }
            if !isRunning {
                usleep(50_000)
                if stdout.contains(text) || stderr.contains(text) { return }
                throw LabError("process ended before printing '\(text)': \(stdout) \(stderr)")
            }
            usleep(20_000)
        }
        throw LabError("timed out waiting for '\(text)'; output so far: \(stdout) \(stderr)")
    }

    /// Waits for the process to end (SIGINT, then SIGKILL, past `timeout`); returns its status.
    @discardableResult
    func wait(timeout: Double = 30) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning && Date() < deadline { usleep(10_000) }
        if isRunning {
            interrupt()
            let hard = Date().addingTimeInterval(5)
            while isRunning && Date() < hard { usleep(10_000) }
            if isRunning { kill(pid, SIGKILL) }
        }
        while isRunning { usleep(10_000) }
        _ = readerDone.wait(timeout: .now() + 5)
        readerDone.signal()
        return status ?? -1
    }

    func interrupt() { if isRunning { kill(pid, SIGINT) } }
}

/// Runs a command to completion, with a time limit (killed past it).
@discardableResult
func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> CommandResult {
    let command = try BackgroundCommand(executable, arguments)
    let status = command.wait(timeout: timeout)
    return CommandResult(status: status, stdout: command.stdout, stderr: command.stderr)
}
