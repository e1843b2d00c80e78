/// A fixed array of 64-bit counters written by one worker and read, without stopping it, by the
/// control plane (Linux: per-CPU MIB counters summed on read). Aligned to a cache line so two
/// workers' blocks never share one.
public final class CounterBlock: @unchecked Sendable {
    @usableFromInline let values: UnsafeMutablePointer<UInt64>
    public let count: Int

    public init(count: Int) {
        self.count = count
        let bytes = max(64, (count * 8 + 63) & ~63)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        values = raw.bindMemory(to: UInt64.self, capacity: bytes / 8)
        values.initialize(repeating: 0, count: bytes / 8)
    }

    deinit { UnsafeMutableRawPointer(values).deallocate() }

    /// Adds to counter `index`; an index outside the block is a precondition failure (one
    /// unsigned compare), never a write into a neighbour's memory.
    @inlinable @inline(__always)
    public func add(_ index: Int, _ amount: UInt64 = 1) {
        precondition(UInt(bitPattern: index) < UInt(bitPattern: count), "counter index out of range")
        // Relaxed atomic load and store (one writer): the same two moves as a plain `+=` on
        // x86-64 and arm64, but no data race with a reader (ThreadSanitizer agrees).
        SharedWord.storeRelaxed(values + index, SharedWord.loadRelaxed(values + index) &+ amount)
    }

    /// A relaxed atomic read (tear-free, possibly a little behind the writer), for reporting.
    @inlinable
    public subscript(index: Int) -> UInt64 {
        precondition(UInt(bitPattern: index) < UInt(bitPattern: count), "counter index out of range")
        return SharedWord.loadRelaxed(values + index)
    }

    public func reset() { values.update(repeating: 0, count: count) }
}

/// Per-worker drop counters, one per possible `DropReason` (every code of every subsystem:
/// a subsystem registered after the worker was made counts all the same).
public final class DropCounters: @unchecked Sendable {
    public let block = CounterBlock(count: DropReason.capacity)
    public init() {}

    @inlinable @inline(__always)
    public func count(_ reason: DropReason, _ amount: UInt64 = 1) {
        block.add(Int(reason.rawValue), amount)
    }

    @inlinable public subscript(reason: DropReason) -> UInt64 { block[Int(reason.rawValue)] }

    /// Every reason counted so far with its count, registered or not, in counter order.
    public var counted: [(reason: DropReason, count: UInt64)] {
        (0..<DropReason.capacity).compactMap { index in
            let count = block[index]
            return count == 0 ? nil : (DropReason(rawValue: UInt16(index)), count)
        }
    }

    /// Drops of every reason.
    public var total: UInt64 { (0..<DropReason.capacity).reduce(0) { $0 &+ block[$1] } }
}
