/// One CPU's datapath state (Linux: `struct softnet_data` plus the per-CPU caches around it):
/// its pool cache, drop and stage counters, timers and scratch batches. Stages receive the
/// worker they run on, so the fast path takes no lock. A worker that is never started is a
/// plain context: unit tests and benchmarks run stages on it inline.
public final class Worker: @unchecked Sendable {
    /// Position in the worker group (0 for a stand-alone worker).
    public let index: Int
    /// The CPU its thread is pinned to, if any.
    public let cpu: Int?
    /// The pool the worker allocates from, kept alive as long as the worker is.
    public let pool: PacketPool
    public let cache: PoolCache
    public let drops: DropCounters
    public let stages: StageCounters
    public let clock: any DatapathClock
    public let timers: TimerWheel
    /// Scratch batches for stages that split a batch, allocated once so that no stage allocates
    /// per batch: 1...15 belong to ptype dispatch (by handler slot), 16 to the device split,
    /// 17 to single-frame transmits, 18 and 19 to the stack above Core (see its users), 20 to
    /// software GSO before transmit, 21 to qdisc runs.
    public let scratch: UnsafeMutablePointer<PacketBatch>

    @inlinable public static var scratchCount: Int { 22 }
    /// The scratch batch `netifReceiveSkb` splits mixed-device backlog batches into.
    @inlinable public static var deviceSplitScratch: Int { 16 }
    /// The scratch batch `devQueueXmit(_ skb:…)` sends single frames through.
    @inlinable public static var transmitScratch: Int { 17 }
    /// Scratch batches the stack above Core may use, one user each (documented at the user).
    @inlinable public static var stackScratch: Int { 18 }
    /// The scratch batch `devQueueXmit` segments GSO packets into for a device without GSO.
    @inlinable public static var gsoScratch: Int { 20 }
    /// The scratch batch a backlogged qdisc is sent from.
    @inlinable public static var qdiscScratch: Int { 21 }

    public init(index: Int = 0, cpu: Int? = nil, pool: PacketPool, clock: any DatapathClock = MonotonicClock()) {
        precondition(index >= 0 && index < NetCore.maximumWorkers,
                     "worker index \(index) outside 0..<\(NetCore.maximumWorkers)")
        self.index = index
        self.cpu = cpu
        self.pool = pool
        self.cache = pool.makeCache()
        self.drops = DropCounters()
        self.stages = StageCounters()
        self.clock = clock
        self.timers = TimerWheel(clock: clock)
        self.scratch = .allocate(capacity: Worker.scratchCount)
        for i in 0..<Worker.scratchCount { (scratch + i).initialize(to: PacketBatch()) }
    }

    deinit {
        for i in 0..<Worker.scratchCount { scratch[i].deallocate() }
        scratch.deinitialize(count: Worker.scratchCount)
        scratch.deallocate()
    }

    /// Frees `skb` and counts the drop (Linux: `kfree_skb_reason`).
    @inlinable @inline(__always)
    public func drop(_ skb: SKB, _ reason: DropReason) {
        drops.count(reason)
        cache.free(skb)
    }

    /// An skb whose data may be written (Linux: `skb_unshare`): `skb` itself when no clone
    /// shares its data, else a private copy (the original freed); nil — the skb dropped as
    /// `.noMemory` — when no copy could be made.
    @inlinable @inline(__always)
    public func unshare(_ skb: SKB) -> SKB? {
        skb.isShared ? unshareSlow(skb) : skb
    }

    @usableFromInline
    func unshareSlow(_ skb: SKB) -> SKB? {
        guard let copy = cache.copy(skb) else {
            drop(skb, .noMemory)
            return nil
        }
        cache.free(skb)
        return copy
    }

    /// Frees every skb in `batch` counting each under `reason`, and empties it.
    @inlinable
    public func drop(_ batch: inout PacketBatch, _ reason: DropReason) {
        drops.count(reason, UInt64(batch.count))
        cache.free(&batch)
    }
}
