/// Up to `capacity` skbs that move through a stage together (VPP's frame of vectors). Stages loop
/// over a batch inside and write survivors back in place, so a batch never allocates.
///
/// A batch owns only its slot array, allocated once (per worker, per stage) and released with
/// `deallocate()`; the skbs in it are owned by whichever stage holds the batch.
@frozen
public struct PacketBatch {
    /// The largest batch a stage is handed.
    @inlinable public static var maximumCount: Int { 256 }

    public let slots: UnsafeMutablePointer<SKB>
    public let capacity: Int
    public var count: Int

    /// Allocates the slot array (control-plane work: do it once, not per batch).
    public init(capacity: Int = PacketBatch.maximumCount) {
        precondition(capacity > 0)
        self.slots = .allocate(capacity: capacity)
        self.capacity = capacity
        self.count = 0
    }

    /// Releases the slot array; the skbs still in the batch are not freed.
    public func deallocate() { slots.deallocate() }

    @inlinable public var isEmpty: Bool { count == 0 }
    @inlinable public var isFull: Bool { count == capacity }
    @inlinable public var indices: Range<Int> { 0..<count }

    @inlinable
    public subscript(index: Int) -> SKB {
        get { slots[index] }
        nonmutating set { slots[index] = newValue }
    }

    /// Appends unless full; returns false (and keeps nothing) when full.
    @inlinable @discardableResult
    public mutating func append(_ skb: SKB) -> Bool {
        guard count < capacity else { return false }
        slots[count] = skb
        count &+= 1
        return true
    }

    /// Forgets every skb without freeing them (they were handed on).
    @inlinable public mutating func removeAll() { count = 0 }
}

/// Runs `body` with a batch whose slots live on the stack (no heap allocation).
@inlinable
public func withPacketBatch<R>(capacity: Int = PacketBatch.maximumCount, _ body: (inout PacketBatch) throws -> R) rethrows -> R {
    try withUnsafeTemporaryAllocation(of: SKB.self, capacity: capacity) { buffer in
        var batch = PacketBatch(borrowing: buffer.baseAddress!, capacity: capacity)
        return try body(&batch)
    }
}

extension PacketBatch {
    /// A batch over caller-owned slots; never `deallocate()` it.
    @inlinable
    public init(borrowing slots: UnsafeMutablePointer<SKB>, capacity: Int) {
        self.slots = slots
        self.capacity = capacity
        self.count = 0
    }
}
