import CDatapath
import DatapathCore
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM; long-running commands poll it.
let stopRequested = Atomic<Bool>(false)

/// Installs handlers so that SIGINT and SIGTERM end a command cleanly (rings unmapped, files
/// flushed, summary printed).
func installStopSignals() {
    signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
    signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
    // A parent may have started us with these blocked; we rely on them to stop cleanly.
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

func monotonicSeconds() -> Double { Double(CDatapath_monotonic_ns()) / 1e9 }

/// Prints and flushes at once, so that a reader on a pipe sees each line as it happens.
func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// Calls `tick` about once a second until the duration passes, a signal arrives, or `done`
/// says so; sleeps in 10 ms steps.
func runUntilStopped(duration: Double?, done: () -> Bool = { false }, tick: (Double) -> Void) {
    let start = monotonicSeconds()
    var nextTick = start + 1
    while !stopRequested.load(ordering: .relaxed) && !done() {
        let now = monotonicSeconds()
        if let duration, now - start >= duration { break }
        if now >= nextTick {
            tick(now - start)
            nextTick += 1
        }
        usleep(10_000)
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

/// Says which interfaces the kernel's own stack still processes although it was asked not to
/// (`--kernel-rx` not given): the datapath works, but the kernel spends CPU on every frame too.
func warnIfKernelStillReceives(_ devices: [AFPacketDevice]) {
    for device in devices {
        if let error = device.kernelReceiveError { say("warning: \(error)") }
    }
}

/// Prints the library's control-plane events (link up/down, MTU changes, a lost interface) on
/// standard error as `datapath: MESSAGE` lines, at notice level and above unless `--verbose`
/// style callers lower it.
struct StderrLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .notice

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        printError("datapath: \(event.message)")
    }
}

/// The logger CLI commands give the stack.
let cliLogger = Logger(label: "datapath") { _ in StderrLogHandler() }
