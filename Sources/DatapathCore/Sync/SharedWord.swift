import CDatapath

/// Loads, stores and fences on words that workers read while the control plane (or another
/// worker) writes them: neighbour states and their prebuilt headers, FDB entries, link flags.
/// Thin inline wrappers over C11 atomics, so the stack above Core needs no C module of its own.
public enum SharedWord {
    @inlinable @inline(__always)
    public static func load(_ word: UnsafeMutablePointer<UInt64>) -> UInt64 {
        CDatapath_atomic_load_u64(word)
    }

    @inlinable @inline(__always)
    public static func loadRelaxed(_ word: UnsafeMutablePointer<UInt64>) -> UInt64 {
        CDatapath_atomic_load_relaxed_u64(word)
    }

    @inlinable @inline(__always)
    public static func store(_ word: UnsafeMutablePointer<UInt64>, _ value: UInt64) {
        CDatapath_atomic_store_u64(word, value)
    }

    @inlinable @inline(__always)
    public static func storeRelaxed(_ word: UnsafeMutablePointer<UInt64>, _ value: UInt64) {
        CDatapath_atomic_store_relaxed_u64(word, value)
    }

    /// Replaces `expected` with `desired` only if the word still holds `expected`.
    @inlinable @inline(__always)
    public static func compareExchange(_ word: UnsafeMutablePointer<UInt64>, expected: UInt64, desired: UInt64) -> Bool {
        CDatapath_atomic_cas_u64(word, expected, desired)
    }

    @inlinable @inline(__always)
    public static func load(_ word: UnsafeMutablePointer<UInt32>) -> UInt32 {
        CDatapath_atomic_load_u32(word)
    }

    @inlinable @inline(__always)
    public static func store(_ word: UnsafeMutablePointer<UInt32>, _ value: UInt32) {
        CDatapath_atomic_store_u32(word, value)
    }

    @inlinable @inline(__always)
    public static func loadRelaxed(_ word: UnsafeMutablePointer<Int>) -> Int {
        CDatapath_atomic_load_relaxed_long(word)
    }

    @inlinable @inline(__always)
    public static func storeRelaxed(_ word: UnsafeMutablePointer<Int>, _ value: Int) {
        CDatapath_atomic_store_relaxed_long(word, value)
    }

    @inlinable @inline(__always)
    public static func loadRelaxed(_ word: UnsafeMutablePointer<UInt32>) -> UInt32 {
        CDatapath_atomic_load_relaxed_u32(word)
    }

    @inlinable @inline(__always)
    public static func storeRelaxed(_ word: UnsafeMutablePointer<UInt32>, _ value: UInt32) {
        CDatapath_atomic_store_relaxed_u32(word, value)
    }

    /// Orders the loads before it ahead of the loads after it (a seqlock reader's second check).
    @inlinable @inline(__always)
    package static func acquireFence() { CDatapath_fence_acquire() }

    /// Orders the stores before it ahead of the stores after it (a seqlock writer's opening).
    @inlinable @inline(__always)
    package static func releaseFence() { CDatapath_fence_release() }
}

/// A boolean the control plane sets and workers read at any time, without a lock: a device's
/// carrier, a bridge port's or bond slave's link.
public final class SharedFlag: @unchecked Sendable {
    @usableFromInline let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)

    public init(_ value: Bool) { word.initialize(to: value ? 1 : 0) }

    deinit { word.deallocate() }

    @inlinable public var value: Bool {
        get { SharedWord.load(word) != 0 }
        set { SharedWord.store(word, newValue ? 1 : 0) }
    }
}
