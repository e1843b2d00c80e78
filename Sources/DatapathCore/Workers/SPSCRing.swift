import Atomics

/// A lock-free single-producer, single-consumer ring of raw pointers, for handing packets
/// (skb heads) from one CPU's worker to another.
///
/// Plays the role of Linux's per-CPU backlog — `softnet_data.input_pkt_queue`, fed by
/// `enqueue_to_backlog` when RPS steers a packet to another CPU and drained by
/// `process_backlog` — but without the queue lock: exactly one thread may call the producer
/// methods (`enqueue`, `enqueueBurst`) and exactly one other thread the consumer method
/// (`dequeueBurst`). Which threads those are may change only across a synchronisation point
/// (a queue hop, a lock, a thread join).
///
/// Layout: the producer's index (`tail`) and the consumer's index (`head`) live on separate
/// 128-byte blocks (two cache lines each, so the adjacent-line prefetcher does not pair them).
/// Each side keeps, on its own block, a private copy of the other side's index and reads the
/// shared one only when the copy says the ring is full (producer) or holds fewer packets than
/// asked for (consumer). Indices grow without bound (wrapping arithmetic) and are reduced
/// with `mask` on use, so a full ring and an empty ring are told apart without a spare slot.
///
/// Ordering: a side loads its own index relaxed, loads the other side's index acquiring (so
/// the slots it covers are visible), and publishes its own index releasing (after writing or
/// reading the slots). Burst means "up to n" (DPDK's naming): a full ring takes what fits.
public final class SPSCRing: @unchecked Sendable {
    /// The slots, `capacity` of them.
    @usableFromInline let slots: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// `capacity - 1`; capacity is a power of two.
    @usableFromInline let mask: Int
    /// Next index the producer writes; written by the producer only.
    @usableFromInline let tail: UnsafeAtomic<Int>
    /// Next index the consumer reads; written by the consumer only.
    @usableFromInline let head: UnsafeAtomic<Int>
    /// The producer's last view of `head`, on the producer's block.
    @usableFromInline let producerCachedHead: UnsafeMutablePointer<Int>
    /// The consumer's last view of `tail`, on the consumer's block.
    @usableFromInline let consumerCachedTail: UnsafeMutablePointer<Int>
    /// The 256-byte, 128-aligned block holding both index pairs.
    let indexBlock: UnsafeMutableRawPointer

    static let sideStride = 128

    /// Creates an empty ring. `capacity` must be a power of two, at least 2.
    public init(capacity: Int = 1024) {
        precondition(capacity >= 2 && capacity & (capacity - 1) == 0,
                     "SPSCRing capacity must be a power of two ≥ 2, got \(capacity)")
        mask = capacity - 1
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: nil, count: capacity)

        let stride = SPSCRing.sideStride
        indexBlock = .allocate(byteCount: 2 * stride, alignment: stride)
        indexBlock.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * stride)

        // Producer block: tail at +0, cached head at +8. Consumer block: head at +0, cached
        // tail at +8.
        let tailStorage = indexBlock.bindMemory(to: UnsafeAtomic<Int>.Storage.self, capacity: 1)
        tailStorage.initialize(to: UnsafeAtomic<Int>.Storage(0))
        tail = UnsafeAtomic(at: tailStorage)
        producerCachedHead = (indexBlock + 8).bindMemory(to: Int.self, capacity: 1)
        producerCachedHead.initialize(to: 0)

        let headStorage = (indexBlock + stride).bindMemory(to: UnsafeAtomic<Int>.Storage.self, capacity: 1)
        headStorage.initialize(to: UnsafeAtomic<Int>.Storage(0))
        head = UnsafeAtomic(at: headStorage)
        consumerCachedTail = (indexBlock + stride + 8).bindMemory(to: Int.self, capacity: 1)
        consumerCachedTail.initialize(to: 0)
    }

    deinit {
        // Whatever is still queued belongs to the caller (pointers are not owned here).
        let tailStorage = indexBlock.assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self)
        let headStorage = (indexBlock + SPSCRing.sideStride).assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self)
        _ = tailStorage.pointee.dispose()
        _ = headStorage.pointee.dispose()
        tailStorage.deinitialize(count: 1)
        headStorage.deinitialize(count: 1)
        indexBlock.deallocate()
        slots.deinitialize(count: mask + 1)
        slots.deallocate()
    }

    /// Number of slots.
    @inlinable public var capacity: Int { mask &+ 1 }

    /// Pointers queued right now. Approximate while the other side runs; exact when neither
    /// side is mid-call. Safe to call from any thread.
    @inlinable public var count: Int {
        let consumed = head.load(ordering: .relaxed)
        let produced = tail.load(ordering: .relaxed)
        return Swift.min(Swift.max(produced &- consumed, 0), mask &+ 1)
    }

    /// True when nothing is queued (approximate, as `count`).
    @inlinable public var isEmpty: Bool { count == 0 }

    // MARK: Producer side

    /// Enqueues up to `count` pointers from `items`, in order, and returns how many were
    /// taken (fewer than `count` only when the ring fills up). Producer thread only.
    @inlinable
    public func enqueueBurst(_ items: UnsafePointer<UnsafeMutableRawPointer>, count: Int) -> Int {
        let size = mask &+ 1
        let position = tail.load(ordering: .relaxed)
        var free = size &- (position &- producerCachedHead.pointee)
        if free < count {
            producerCachedHead.pointee = head.load(ordering: .acquiring)
            free = size &- (position &- producerCachedHead.pointee)
        }
        let n = Swift.min(count, free)
        guard n > 0 else { return 0 }

        // Copy in at most two runs (before and after the wrap), so the loops carry no mask.
        let start = position & mask
        let firstRun = Swift.min(n, size &- start)
        let destination = slots + start
        for i in 0..<firstRun { destination[i] = items[i] }
        if firstRun < n {
            let rest = items + firstRun
            for i in 0..<(n &- firstRun) { slots[i] = rest[i] }
        }
        tail.store(position &+ n, ordering: .releasing)
        return n
    }

    /// Enqueues one pointer; false (and nothing changes) when the ring is full. Producer
    /// thread only.
    @inlinable @discardableResult
    public func enqueue(_ item: UnsafeMutableRawPointer) -> Bool {
        let position = tail.load(ordering: .relaxed)
        if position &- producerCachedHead.pointee > mask {
            producerCachedHead.pointee = head.load(ordering: .acquiring)
            if position &- producerCachedHead.pointee > mask { return false }
        }
        slots[position & mask] = item
        tail.store(position &+ 1, ordering: .releasing)
        return true
    }

    // MARK: Consumer side

    /// Dequeues up to `max` pointers into `into`, oldest first, and returns how many (0 when
    /// the ring is empty). Consumer thread only.
    @inlinable
    public func dequeueBurst(into destination: UnsafeMutablePointer<UnsafeMutableRawPointer>, max: Int) -> Int {
        let position = head.load(ordering: .relaxed)
        var available = consumerCachedTail.pointee &- position
        if available < max {
            consumerCachedTail.pointee = tail.load(ordering: .acquiring)
            available = consumerCachedTail.pointee &- position
        }
        let n = Swift.min(max, available)
        guard n > 0 else { return 0 }

        let start = position & mask
        let firstRun = Swift.min(n, (mask &+ 1) &- start)
        let source = slots + start
        for i in 0..<firstRun { destination[i] = source[i].unsafelyUnwrapped }
        if firstRun < n {
            let rest = destination + firstRun
            for i in 0..<(n &- firstRun) { rest[i] = slots[i].unsafelyUnwrapped }
        }
        head.store(position &+ n, ordering: .releasing)
        return n
    }
}
