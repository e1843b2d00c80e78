import DatapathCore
import DatapathWire
import Dispatch
import Foundation
import Synchronization
import Testing

@Suite struct WorkerLocalTests {
    @Test func eachWorkerHasItsOwnValue() throws {
        let pool = try PacketPool(capacity: 8, bufferSize: 2048)
        let workers = (0..<3).map { Worker(index: $0, pool: pool) }
        let local = WorkerLocal(workers: 3) { index in index * 10 }
        for worker in workers { local[worker] += worker.index + 1 }
        #expect(Array(local) == [1, 12, 23])
        #expect(local.count == 3)
        #expect(local.reduce(0, +) == 36)
    }

    @Test func classValuesAreMadeOncePerWorker() {
        let local = WorkerLocal(workers: 4) { _ in CounterBlock(count: 1) }
        #expect(Set(local.map(ObjectIdentifier.init)).count == 4)
    }

    @Test func aWorkerBeyondTheSizeIsAPreconditionFailure() async {
        await #expect(processExitsWith: .failure) {
            let pool = try! PacketPool(capacity: 8, bufferSize: 2048)
            let local = WorkerLocal(workers: 2) { _ in 0 }
            local[Worker(index: 2, pool: pool)] += 1
        }
        await #expect(processExitsWith: .failure) {
            let local = WorkerLocal(workers: 2) { _ in 0 }
            _ = local[-1]
        }
    }

    @Test func aThrowingInitializerReleasesWhatItMade() {
        struct Refused: Error {}
        final class Tally { var live = 0 }
        final class Tracked {
            let tally: Tally
            init(_ tally: Tally) { self.tally = tally; tally.live += 1 }
            deinit { tally.live -= 1 }
        }
        let tally = Tally()
        #expect(throws: Refused.self) {
            _ = try WorkerLocal(workers: 4) { index -> Tracked in
                if index == 2 { throw Refused() }
                return Tracked(tally)
            }
        }
        #expect(tally.live == 0)
        var local: WorkerLocal<Tracked>? = WorkerLocal(workers: 3) { _ in Tracked(tally) }
        #expect(tally.live == 3 && local?.count == 3)
        local = nil
        #expect(tally.live == 0)
    }
}

@Suite struct SnapshotTests {
    @Test func aWorkerSeesAPublicationFromItsNextRead() throws {
        let pool = try PacketPool(capacity: 8, bufferSize: 2048)
        let worker = Worker(index: 1, pool: pool)
        let snapshot = Snapshot([1, 2, 3], workers: 2)
        #expect(snapshot.read(worker) == [1, 2, 3])
        #expect(snapshot.generation == 1)
        snapshot.publish([4])
        #expect(snapshot.generation == 2)
        #expect(snapshot.read(worker) == [4])
        #expect(snapshot.value == [4])
    }

    @Test func aThrowingUpdatePublishesNothing() {
        struct Refused: Error {}
        let snapshot = Snapshot([1], workers: 1)
        #expect(throws: Refused.self) {
            try snapshot.update { (list: inout [Int]) throws(Refused) in
                list.append(2)
                throw Refused()
            }
        }
        #expect(snapshot.value == [1])
        #expect(snapshot.generation == 1)
        let count = snapshot.update { list -> Int in
            list.append(2)
            return list.count
        }
        #expect(count == 2 && snapshot.value == [1, 2] && snapshot.generation == 2)
    }

    /// Two workers read while the control plane publishes: every value a worker reads is one
    /// that was published whole (all elements equal, at least the last generation it saw).
    @Test func readersSeeWholeValuesInOrderWhilePublicationsRun() async throws {
        let pool = try PacketPool(capacity: 8, bufferSize: 2048)
        let workers = (0..<2).map { Worker(index: $0, pool: pool) }
        let snapshot = Snapshot([Int](repeating: 0, count: 64), workers: 2)
        let publications = 2000
        let problems = Atomic(0)
        let done = Atomic(false)
        let group = DispatchGroup()
        for worker in workers {
            // A thread of its own: the global queue's few threads may all be busy with other
            // tests on a loaded two-core machine, and the readers would start late or not at all.
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var last = 0
                var reads = 0
                while !done.load(ordering: .acquiring) || reads < 100 {
                    let value = snapshot.read(worker)
                    if value.contains(where: { $0 != value[0] }) || value[0] < last { problems.add(1, ordering: .relaxed) }
                    last = value[0]
                    reads += 1
                }
                // Everything was published before `done`: the next read sees the last value.
                if snapshot.read(worker)[0] != publications { problems.add(1, ordering: .relaxed) }
            }
        }
        for n in 1...publications { snapshot.publish([Int](repeating: n, count: 64)) }
        done.store(true, ordering: .releasing)
        group.wait()
        #expect(problems.load(ordering: .relaxed) == 0)
        #expect(snapshot.generation == UInt64(publications) + 1)
    }
}

/// Registries are fixed before workers start (DESIGN.md §4): a precondition, not a comment.
@Suite struct RegistryFreezeTests {
    final class NoTap: PacketTap, @unchecked Sendable {
        func tap(_ batch: borrowing PacketBatch, device: any NetDevice, worker: Worker) {}
    }

    @Test func startingAGroupFreezesTheRegistries() throws {
        let core = NetCore()
        let pool = try PacketPool(capacity: 64, bufferSize: 2048)
        core.addTap(NoTap())   // before: fine
        let group = WorkerGroup(core: core, pool: pool, count: 1, pin: false)
        #expect(!core.registriesAreFrozen)
        group.start { batch, worker in worker.cache.free(&batch) }
        group.stop()
        #expect(core.registriesAreFrozen)
    }

    @Test func changingARegistryAfterWorkersStartedIsAPreconditionFailure() async {
        await #expect(processExitsWith: .failure) {
            let core = NetCore()
            core.freezeRegistries()
            core.addTap(NoTap())
        }
        await #expect(processExitsWith: .failure) {
            let core = NetCore()
            core.freezeRegistries()
            core.register(MemoryDevice(name: "late", macAddress: MACAddress(0x02, 0, 0, 0, 0, 9)))
        }
    }
}

@Suite struct QuiescenceTests {
    @Test func aGracePeriodWaitsForEveryOnlineWorkerToPassAQuiescentState() throws {
        let pool = try PacketPool(capacity: 8, bufferSize: 2048)
        let workers = (0..<3).map { Worker(index: $0, pool: pool) }
        let domain = Quiescence(workers: 3)
        // Nobody online: a retirement is over at once.
        #expect(domain.hasElapsed(domain.retire()))
        domain.quiescent(workers[0])
        domain.quiescent(workers[1])
        let ticket = domain.retire()
        #expect(!domain.hasElapsed(ticket))
        domain.quiescent(workers[0])
        #expect(!domain.hasElapsed(ticket))     // worker 1 may still hold what was retired
        domain.offline(workers[1])             // going to sleep holding nothing
        #expect(domain.hasElapsed(ticket))
        domain.quiescent(workers[2])
        let later = domain.retire()
        #expect(!domain.hasElapsed(later) && domain.hasElapsed(ticket))
        domain.quiescent(workers[2])
        domain.quiescent(workers[0])
        #expect(domain.hasElapsed(later))
    }

    /// Readers on two threads take objects out of a slab's slots while a writer retires slots
    /// and refills them, waiting out grace periods: within one batch (between two quiescent
    /// states) a reader that validated a slot finds the same object in it every time it looks
    /// again — a refill before the grace period ended would show another object.
    @Test func aSlotIsNeverRefilledUnderAReaderInTheMiddleOfABatch() async throws {
        final class Item: @unchecked Sendable {}
        struct Slab: @unchecked Sendable {
            let generations: UnsafeMutablePointer<UInt32>   // even: live, odd: retired
            let items: UnsafeMutablePointer<Item>
        }
        let slots = 4
        let slab = Slab(generations: .allocate(capacity: slots), items: .allocate(capacity: slots))
        slab.generations.initialize(repeating: 2, count: slots)
        for s in 0..<slots { (slab.items + s).initialize(to: Item()) }
        defer {
            slab.items.deinitialize(count: slots)
            slab.items.deallocate()
            slab.generations.deallocate()
        }
        let pool = try PacketPool(capacity: 8, bufferSize: 2048)
        let readers = (0..<2).map { Worker(index: $0, pool: pool) }
        let domain = Quiescence(workers: 2)
        let problems = Atomic(0)
        let reads = Atomic(0)
        let done = Atomic(false)
        let group = DispatchGroup()
        for worker in readers {
            // A thread of its own: the global queue's few threads may all be busy with other
            // tests on a loaded two-core machine, and the readers would start late or not at all.
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var s = worker.index
                while !done.load(ordering: .acquiring) {
                    domain.quiescent(worker)
                    s = (s &+ 1) % slots
                    let generation = SharedWord.load(slab.generations + s)
                    guard generation & 1 == 0 else { continue }
                    let first = slab.items[s]
                    guard SharedWord.load(slab.generations + s) == generation else { continue }
                    for _ in 0..<200 where slab.items[s] !== first { problems.add(1, ordering: .relaxed) }
                    reads.add(1, ordering: .relaxed)
                }
                domain.offline(worker)
            }
        }
        var tickets = [UInt64](repeating: 0, count: slots)
        var refills = 0
        var random = SplitMix64(seed: 3)
        // Until both sides did enough (the readers may start late on a loaded machine), bounded.
        let deadline = ContinuousClock.now + .seconds(90)
        // At most half the slots are out at a time, so that readers sharing the cores with
        // this loop (and with whatever else the machine runs) still find live ones to read.
        var out = 0
        while (reads.load(ordering: .relaxed) < 5000 || refills < 20000) && ContinuousClock.now < deadline {
            let s = Int(random.next() % UInt64(slots))
            let generation = SharedWord.load(slab.generations + s)
            if generation & 1 == 0 {
                guard out < slots / 2 else { continue }
                SharedWord.store(slab.generations + s, generation &+ 1)
                tickets[s] = domain.retire()
                out += 1
            } else if domain.hasElapsed(tickets[s]) {
                slab.items[s] = Item()
                SharedWord.store(slab.generations + s, generation &+ 1)
                refills += 1
                out -= 1
            }
        }
        done.store(true, ordering: .releasing)
        group.wait()
        #expect(problems.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) >= 5000 && refills >= 20000)
    }
}
