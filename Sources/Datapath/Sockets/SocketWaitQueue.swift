import Synchronization
import DatapathCore

/// Tasks waiting on a socket for a state change (Linux: the socket's `wait_queue_head_t`, slept
/// on in `__skb_wait_for_more_packets` and `sock_wait_for_wmem`, woken by `sk_data_ready` and
/// `sk_write_space`).
///
/// A waiter registers, then publishes that it waits, fences, and checks its condition again; a
/// waker changes the state, fences, then checks whether anyone waits. Each side stores before it
/// loads the other's flag, so at least one sees the other: no wake-up is lost, and a worker whose
/// socket has no waiter pays a fence and a load, never a lock. Wake-ups wake every waiter, which
/// check their condition again (a waiter must loop: another may have taken what woke it).
package final class SocketWaitQueue: @unchecked Sendable {
    let waiting = Atomic<Bool>(false)
    let waiters = Lock<[CheckedContinuation<Void, Never>]>([])

    public init() {}

    /// Returns when `ready()` holds, or after a wake-up (spurious ones included): callers loop.
    public func wait(until ready: () -> Bool) async {
        if ready() { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            waiters.withLock { $0.append(continuation) }
            waiting.store(true, ordering: .relaxed)
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            if ready() { wakeAll() }
        }
    }

    /// Call after changing what waiters wait for: wakes them if any (any thread).
    @inline(__always)
    package func wakeUp() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if waiting.load(ordering: .relaxed) { wakeAll() }
    }

    func wakeAll() {
        let woken = waiters.withLock { list -> [CheckedContinuation<Void, Never>] in
            waiting.store(false, ordering: .relaxed)
            defer { list.removeAll() }
            return list
        }
        for continuation in woken { continuation.resume() }
    }
}
