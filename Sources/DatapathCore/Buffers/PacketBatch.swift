/// Up to `capacity` skbs that move through a stage together (VPP's frame of vectors). Stages loop
/// over a batch inside and write survivors back in place, so a batch never allocates.
///
/// Not copyable: a batch is handed on (`inout`, or consumed), never duplicated, so two holders
/// can never think they own the same skbs. A batch owns its slot array when it made it
/// (`init(capacity:)`, allocated once per worker and stage, freed when the batch ends); a
/// `view()` or a batch over caller-owned slots (`init(borrowing:capacity:)`) owns nothing. The
/// skbs in it are owned by whichever stage holds the batch: a batch that ends still holding
/// skbs is a programming error — they would leak — and stops the program (a precondition).
@frozen
public struct PacketBatch: ~Copyable {
    /// The largest batch a stage is handed.
    @inlinable public static var maximumCount: Int { 256 }

    public let slots: UnsafeMutablePointer<SKB>
    public let capacity: Int
    public var count: Int
    /// Whether the slot array is this batch's to free.
    @usableFromInline let ownsSlots: Bool

    /// Allocates the slot array (control-plane work: do it once, not per batch).
    public init(capacity: Int = PacketBatch.maximumCount) {
        precondition(capacity > 0)
        self.slots = .allocate(capacity: capacity)
        self.capacity = capacity
        self.count = 0
        self.ownsSlots = true
    }

    deinit {
        precondition(count == 0, "a PacketBatch ended holding skbs: they would leak (free or hand them on first)")
        if ownsSlots { slots.deallocate() }
    }

    /// A batch over the same slots that owns nothing, starting empty (or with `count` of them):
    /// what a stage works on in a local, while the batch itself stays with its owner (a class
    /// property read once, not once per packet). It must end empty, like any batch.
    @inlinable
    public func view(count: Int = 0) -> PacketBatch {
        var view = PacketBatch(borrowing: slots, capacity: capacity)
        view.count = count
        return view
    }

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
    /// A batch over caller-owned slots; it frees nothing.
    @inlinable
    public init(borrowing slots: UnsafeMutablePointer<SKB>, capacity: Int) {
        self.slots = slots
        self.capacity = capacity
        self.count = 0
        self.ownsSlots = false
    }
}
