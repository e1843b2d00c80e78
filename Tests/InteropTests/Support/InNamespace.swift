import Foundation
import DatapathCore

/// Runs `body` on a thread that has joined namespace `ns` (setns is per thread), and waits.
/// Sockets opened in `body` stay in that namespace whatever thread uses them later.
func inNamespace<T: Sendable>(_ ns: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
    let result = LockedResult<T>()
    let thread = Thread {
        do {
            try NetworkNamespace.enterOnCurrentThread(named: ns)
        } catch {
            result.set(.failure(error))
            return
        }
        result.set(Result { try body() })
    }
    thread.start()
    return try result.wait(timeout: 60).get()
}

/// A value handed from one thread to another.
final class LockedResult<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Result<T, any Error>?
    func set(_ result: Result<T, any Error>) {
        condition.lock()
        value = result
        condition.broadcast()
        condition.unlock()
    }
    func wait(timeout: Double) throws -> Result<T, any Error> {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        while value == nil {
            if !condition.wait(until: deadline) { throw LabError("timed out after \(timeout) s") }
        }
        return value!
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` seconds pass; returns whether it held.
func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
