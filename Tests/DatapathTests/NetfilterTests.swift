import Testing
import Datapath
import DatapathCore
import DatapathWire

/// A hook function that decides by the packet's first byte and records what it saw.
final class MarkerHook: NetfilterHookFunction, @unchecked Sendable {
    let name: String
    let decide: (UInt8, Int) -> NetfilterVerdict
    var seen: [UInt8] = []
    var stolen: [SKB] = []

    init(_ name: String, decide: @escaping (UInt8, Int) -> NetfilterVerdict) {
        self.name = name
        self.decide = decide
    }

    func hook(_ hook: NetfilterHook, batch: borrowing PacketBatch, verdicts: UnsafeMutablePointer<NetfilterVerdict>,
              worker: Worker) {
        for i in 0..<batch.count {
            let marker = batch[i].data.load(as: UInt8.self)
            let times = seen.filter { $0 == marker }.count
            seen.append(marker)
            verdicts[i] = decide(marker, times)
            if verdicts[i] == .stolen { stolen.append(batch[i]) }
        }
    }
}

/// Records the order functions ran in.
final class OrderLog: @unchecked Sendable { var names: [String] = [] }

final class OrderHook: NetfilterHookFunction, @unchecked Sendable {
    let name: String
    let log: OrderLog
    init(_ name: String, _ log: OrderLog) { self.name = name; self.log = log }
    func hook(_ hook: NetfilterHook, batch: borrowing PacketBatch, verdicts: UnsafeMutablePointer<NetfilterVerdict>,
              worker: Worker) { log.names.append("\(name)@\(hook)") }
}

@Suite struct NetfilterTests {
    let pool: PacketPool
    let worker: Worker
    let netfilter = Netfilter(workers: 1)

    init() throws {
        pool = try PacketPool(capacity: 256)
        worker = Worker(pool: pool, clock: VirtualClock())
    }

    func batch(_ markers: [UInt8]) -> PacketBatch {
        var batch = PacketBatch()
        for marker in markers {
            let skb = worker.cache.allocate()!
            skb.put(20)!.storeBytes(of: marker, as: UInt8.self)
            batch.append(skb)
        }
        return batch
    }

    func run(_ hook: NetfilterHook, _ markers: [UInt8]) -> [UInt8] {
        var b = batch(markers)
        netfilter.run(hook, &b, worker: worker)
        let survivors = b.indices.map { b[$0].data.load(as: UInt8.self) }
        worker.cache.free(&b)
        return survivors
    }

    @Test func anEmptyHookLeavesTheBatchAlone() {
        #expect(run(.forward, [1, 2, 3]) == [1, 2, 3])
        #expect(pool.inUseCount == 0)
    }

    @Test func functionsRunByPriorityOnTheirHookOnly() {
        let log = OrderLog()
        netfilter.register(OrderHook("filter", log), on: .forward, priority: 0)
        netfilter.register(OrderHook("mangle", log), on: .forward, priority: -150)
        netfilter.register(OrderHook("late", log), on: .forward, priority: 0)
        netfilter.register(OrderHook("input", log), on: .localIn, priority: 0)
        _ = run(.forward, [1])
        #expect(log.names == ["mangle@FORWARD", "filter@FORWARD", "late@FORWARD"])
        #expect(pool.inUseCount == 0)
    }

    @Test func dropFreesAndCountsStolenLeavesAndAcceptGoesOn() {
        let dropOdd = MarkerHook("drop") { marker, _ in marker % 2 == 1 ? .drop : .accept }
        let stealFour = MarkerHook("steal") { marker, _ in marker == 4 ? .stolen : .accept }
        netfilter.register(dropOdd, on: .preRouting, priority: 0)
        netfilter.register(stealFour, on: .preRouting, priority: 10)
        #expect(run(.preRouting, [1, 2, 3, 4, 5, 6]) == [2, 6])
        #expect(worker.drops[.netfilterDrop] == 3)
        #expect(stealFour.seen == [2, 4, 6])
        #expect(stealFour.stolen.count == 1)
        #expect(pool.inUseCount == 1)   // the stolen skb is the function's now
        worker.cache.free(stealFour.stolen[0])
        #expect(pool.inUseCount == 0)
    }

    @Test func repeatRunsTheSameFunctionAgainAndEndlessRepeatsAreDropped() {
        let once = MarkerHook("once") { marker, times in marker == 2 && times == 0 ? .repeat : .accept }
        let after = MarkerHook("after") { _, _ in .accept }
        netfilter.register(once, on: .localOut, priority: 0)
        netfilter.register(after, on: .localOut, priority: 1)
        #expect(run(.localOut, [1, 2, 3]) == [1, 3, 2])
        #expect(once.seen == [1, 2, 3, 2])
        #expect(after.seen == [1, 3, 2])

        let forever = MarkerHook("forever") { marker, _ in marker == 9 ? .repeat : .accept }
        netfilter.register(forever, on: .postRouting, priority: 0)
        #expect(run(.postRouting, [8, 9]) == [8])
        #expect(forever.seen.filter { $0 == 9 }.count == 1 + Netfilter.maximumRepeats)
        #expect(worker.drops[.netfilterDrop] == 1)
        #expect(pool.inUseCount == 0)
    }

    @Test func unregisteringEmptiesTheHookAgain() {
        let dropAll = MarkerHook("all") { _, _ in .drop }
        netfilter.register(dropAll, on: .forward, priority: 0)
        #expect(run(.forward, [1, 2]).isEmpty)
        netfilter.unregister(dropAll, from: .forward)
        #expect(run(.forward, [1, 2]) == [1, 2])
        #expect(pool.inUseCount == 0)
    }
}
