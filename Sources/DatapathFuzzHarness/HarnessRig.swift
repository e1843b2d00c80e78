import Datapath
import DatapathCore

/// What the stack harnesses share: a virtual clock, a pool, a worker driving a stack by hand,
/// the receive loop, and the end-of-input checks.
final class HarnessRig {
    let clock = VirtualClock(start: 1_000_000_000_000)
    let pool: PacketPool
    let worker: Worker
    let stack: Stack
    var batch = PacketBatch()
    private(set) var baseline = 0

    /// `make` builds the stack on the rig's clock.
    init(stack make: (VirtualClock) -> Stack) throws {
        pool = try PacketPool(capacity: 4096)
        worker = Worker(pool: pool, clock: clock)
        stack = make(clock)
    }

    /// The pool's use once set-up is done: what every input must leave it at.
    func markBaseline() {
        worker.cache.drainAll()
        baseline = pool.inUseCount
    }

    /// Puts `skb` on `device`'s receive ring (freed if the ring is full) and runs the receive
    /// path until the ring is empty.
    func deliver(_ skb: SKB, on device: MemoryDevice) {
        if !device.inject(skb) { worker.cache.free(skb) }
        while device.pending() > 0 {
            _ = device.receive(queue: 0, into: &batch, max: 256, worker: worker)
            stack.core.netifReceiveSkb(&batch, worker: worker)
        }
    }

    /// Frees every frame `wire` received, each first shown to `check`.
    func drain(_ wire: MemoryDevice, _ check: (SKB) -> Void = { _ in }) {
        while wire.pending() > 0 {
            _ = wire.receive(queue: 0, into: &batch, max: 256, worker: worker)
            for i in batch.indices { check(batch[i]) }
            worker.cache.free(&batch)
        }
    }

    /// Traps unless every drop had a reason and every buffer is back.
    func checkDropsAndPool() {
        precondition(worker.drops[.notSpecified] == 0, "a drop without a reason")
        worker.cache.drainAll()
        precondition(pool.inUseCount == baseline, "pool not at its baseline: \(pool.inUseCount) in use, \(baseline) before")
    }
}
