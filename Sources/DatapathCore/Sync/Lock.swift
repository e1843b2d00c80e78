import Synchronization

/// A lock around a value: Synchronization's `Mutex`, with its ordering also stated through an
/// atomic that ThreadSanitizer can see. `Mutex` orders its holders with futexes and atomics
/// inside the standard library, which is not instrumented, so TSan sees no happens-before from
/// one holder to the next and reports what the lock protects — and what it hands over: an skb
/// freed to a pool's shared stack on one worker and taken from it on another, a datagram a
/// worker queues on a socket and the application reads. Every holder here loads `order` with
/// acquire ordering when it enters and stores it with release ordering when it leaves; on
/// x86-64 both are plain moves, so the lock costs what `Mutex` costs.
///
/// Use it for every lock in the datapath, so that `Scripts/sanitize thread` checks the
/// accesses the lock orders rather than needing suppressions for them.
public struct Lock<Value: ~Copyable>: ~Copyable {
    @usableFromInline let mutex: Mutex<Value>
    @usableFromInline let order: Atomic<UInt>

    public init(_ initialValue: consuming sending Value) {
        mutex = Mutex(initialValue)
        order = Atomic(0)
    }

    /// Runs `body` with the value, holding the lock. Always inlined, as `Mutex.withLock` is:
    /// called from generic code (a `Snapshot<Value>`'s getter), an out-of-line copy would be
    /// left unspecialized, instantiating its metadata at run time on every call.
    @inlinable @inline(__always)
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            _ = order.load(ordering: .acquiring)
            defer { order.store(0, ordering: .releasing) }
            return try body(&value)
        }
    }
}

extension Lock: @unchecked Sendable where Value: ~Copyable {}
