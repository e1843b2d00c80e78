import Foundation

/// The result of a finished command.
struct CommandResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs a command to completion, with a time limit (killed past it).
@discardableResult
func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    let outData = LockedData(), errData = LockedData()
    let group = DispatchGroup()
    for (pipe, sink) in [(out, outData), (err, errData)] {
        group.enter()
        DispatchQueue.global().async {
            sink.set(pipe.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
    }
    process.waitUntilExit()
    group.wait()
    return CommandResult(status: process.terminationStatus,
                         stdout: String(decoding: outData.get(), as: UTF8.self),
                         stderr: String(decoding: errData.get(), as: UTF8.self))
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func append(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// A command left running in the background; its output is collected as it comes.
final class BackgroundCommand {
    let process = Process()
    let output = LockedData()
    let errors = LockedData()

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let output = self.output, errors = self.errors
        out.fileHandleForReading.readabilityHandler = { handle in output.append(handle.availableData) }
        err.fileHandleForReading.readabilityHandler = { handle in errors.append(handle.availableData) }
        try process.run()
    }

    var stdout: String { String(decoding: output.get(), as: UTF8.self) }
    var stderr: String { String(decoding: errors.get(), as: UTF8.self) }

    /// Waits until stdout contains `text`; throws after `timeout` seconds or if the process ends.
    func waitFor(_ text: String, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stdout.contains(text) { return }
            if !process.isRunning {
                if stdout.contains(text) { return }
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
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.interrupt()
            let hard = Date().addingTimeInterval(5)
            while process.isRunning && Date() < hard { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        usleep(50_000)  // let the readability handlers take the last output
        return process.terminationStatus
    }

    func interrupt() { if process.isRunning { process.interrupt() } }
}
