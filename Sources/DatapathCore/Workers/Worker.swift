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
    /// Work other threads scheduled on this worker (`Tasklet`), and the doorbell that wakes it.
    public let tasklets: TaskletList
    /// Core's own scratch batches, allocated once so that no stage of Core allocates per batch
    /// (the stack's subsystems own theirs: `ScratchBatches`). One allocation; each has a name.
    @usableFromInline let scratch: UnsafeMutablePointer<PacketBatch>
    static let scratchCount = NetCore.maximumPacketTypes + 5

    /// Ptype dispatch's batch for handler slot `slot` (1...`NetCore.maximumPacketTypes`).
    @inlinable @inline(__always)
    func dispatchBatch(_ slot: Int) -> UnsafeMutablePointer<PacketBatch> { scratch + slot }
    /// The batch `netifReceiveSkb` splits mixed-device backlog batches into.
    @usableFromInline var deviceSplitBatch: UnsafeMutablePointer<PacketBatch> {
        scratch + (NetCore.maximumPacketTypes + 1)
    }
    /// The batch `devQueueXmit(_ skb:…)` sends single frames through.
    @usableFromInline var transmitBatch: UnsafeMutablePointer<PacketBatch> { scratch + (NetCore.maximumPacketTypes + 2) }
    /// The batch `devQueueXmit` segments GSO packets into for a device without GSO.
    @usableFromInline var gsoBatch: UnsafeMutablePointer<PacketBatch> { scratch + (NetCore.maximumPacketTypes + 3) }
    /// The batch a backlogged qdisc is sent from.
    @usableFromInline var qdiscBatch: UnsafeMutablePointer<PacketBatch> { scratch + (NetCore.maximumPacketTypes + 4) }

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
        self.tasklets = TaskletList()
        self.scratch = .allocate(capacity: Worker.scratchCount)
        for i in 0..<Worker.scratchCount { (scratch + i).initialize(to: PacketBatch()) }
    }

    deinit {
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
