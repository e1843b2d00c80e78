/// A FIFO of skbs linked through their `next` field (Linux: `struct sk_buff_head` with the
/// unlocked `__skb_*` helpers): a neighbour's pending queue, a datagram's fragments in
/// reassembly, and later a socket's receive and write queues. A value embedded in its owner;
/// it allocates nothing, and an skb is on at most one queue at a time.
///
/// Not synchronised: one thread at a time (its worker, or under its owner's lock), as Linux's
/// double-underscore variants. Skbs on it must live in pool memory, not in a ring block that
/// is about to be handed back (DESIGN.md §3: `PoolCache.detachFromRing` first).
///
/// Whoever drops the queue with skbs still on it leaks them: empty it with `purge` (Linux:
/// `__skb_queue_purge`) or by dequeuing.
@frozen
public struct SKBQueue {
    @usableFromInline var first: UnsafeMutablePointer<SKBHead>?
    @usableFromInline var last: UnsafeMutablePointer<SKBHead>?
    @usableFromInline var length: Int

    /// Skbs on the queue (Linux: `qlen`).
    @inlinable public var count: Int { length }

    public init() {
        first = nil
        last = nil
        length = 0
    }

    @inlinable public var isEmpty: Bool { length == 0 }

    /// The oldest skb, left on the queue (Linux: `skb_peek`).
    @inlinable public var head: SKB? { first.map(SKB.init) }

    /// The newest skb, left on the queue (Linux: `skb_peek_tail`).
    @inlinable public var tail: SKB? { last.map(SKB.init) }

    /// Appends `skb` (Linux: `__skb_queue_tail`).
    @inlinable
    public mutating func enqueue(_ skb: SKB) {
        skb.head.pointee.next = nil
        if let last { last.pointee.next = skb.head } else { first = skb.head }
        last = skb.head
        length &+= 1
    }

    /// Puts `skb` first (Linux: `__skb_queue_head`).
    @inlinable
    public mutating func enqueueHead(_ skb: SKB) {
        skb.head.pointee.next = first
        first = skb.head
        if last == nil { last = skb.head }
        length &+= 1
    }

    /// Inserts `skb` right after `previous`, or first when `previous` is nil (Linux:
    /// `__skb_queue_after` / `__skb_queue_head`). `previous` must be on this queue.
    @inlinable
    public mutating func insert(_ skb: SKB, after previous: SKB?) {
        guard let previous else { return enqueueHead(skb) }
        skb.head.pointee.next = previous.head.pointee.next
        previous.head.pointee.next = skb.head
        if last == previous.head { last = skb.head }
        length &+= 1
    }

    /// Takes the oldest skb off the queue (Linux: `__skb_dequeue`); nil when empty.
    @inlinable
    public mutating func dequeue() -> SKB? {
        guard let taken = first else { return nil }
        first = taken.pointee.next
        if first == nil { last = nil }
        taken.pointee.next = nil
        length &-= 1
        return SKB(taken)
    }

    /// Moves up to `batch`'s free room of the oldest skbs into `batch`, in order; returns how
    /// many moved.
    @inlinable @discardableResult
    public mutating func dequeue(into batch: inout PacketBatch) -> Int {
        var moved = 0
        while !batch.isFull, let skb = dequeue() {
            batch.append(skb)
            moved &+= 1
        }
        return moved
    }

    /// Frees every skb on the queue, counting each as a drop for `reason` (Linux:
    /// `__skb_queue_purge_reason`).
    public mutating func purge(_ reason: DropReason, worker: Worker) {
        while let skb = dequeue() { worker.drop(skb, reason) }
    }

    /// Frees every skb on the queue without counting drops (its datagram was delivered or
    /// accounted for as a whole).
    public mutating func free(worker: Worker) {
        while let skb = dequeue() { worker.cache.free(skb) }
    }
}

extension SKBQueue: Sequence {
    /// Walks the queue oldest first (Linux: `skb_queue_walk`); the queue must not change
    /// during the walk.
    @frozen
    public struct Iterator: IteratorProtocol {
        @usableFromInline var upcoming: UnsafeMutablePointer<SKBHead>?

        @inlinable init(_ first: UnsafeMutablePointer<SKBHead>?) { upcoming = first }

        @inlinable
        public mutating func next() -> SKB? {
            guard let current = upcoming else { return nil }
            upcoming = current.pointee.next
            return SKB(current)
        }
    }

    @inlinable public func makeIterator() -> Iterator { Iterator(first) }

    @inlinable public var underestimatedCount: Int { count }
}

@available(*, unavailable, message: "an SKBQueue belongs to one worker or to its owner's lock")
extension SKBQueue: Sendable {}
