import Testing
@testable import Datapath
import DatapathCore
import DatapathWire

/// #13 item 6: bounded resources flooded — memory stays at the bound, and legitimate traffic
/// is still served meanwhile. (Reassembly: ReassemblyTests/ReassemblyExhaustionTests; the
/// bridge FDB: BridgeTests; socket buffers: UDPSocketTests; the FIB: IncrementalFIBTests.)
/// Each prints its figure (`exhaustion: …`), which the README's table quotes.
@Suite struct ExhaustionTests {
    /// 20 000 new destinations through a 1 024-entry route cache: it never holds more than its
    /// size, full sets give up a way only on one miss in 32, and most flows routed before the
    /// flood still hit after it (each entry survives ~600 random evictions among 1 024 with
    /// odds e^-0.6; with every miss evicting, as before, none would).
    @Test func theRouteCacheStaysAtItsSizeUnderARandomDestinationFlood() throws {
        let lab = try ForwardLab(cacheCapacity: 1024)
        let cache = lab.stack.ipv4.state(lab.worker).routeCache
        let established = (1...64).map { ForwardLab.frame(destination: IPv4Address(198, 19, 0, UInt8($0))) }
        lab.deliver(established)
        #expect(lab.sent(on: lab.wire1).count == 64)
        var random = SplitMix64(seed: 5)
        for _ in 0..<20 {
            lab.deliver((0..<1000).map { _ in
                ForwardLab.frame(destination: IPv4Address(hostOrder: 0xC613_0000 | UInt32(truncatingIfNeeded: random.next()) & 0xFFFF))
            })
            _ = lab.sent(on: lab.wire1)
            #expect(cache.liveEntries(epoch: lab.stack.ipv4.state(lab.worker).epoch) <= cache.capacity)
        }
        let evictions = lab.stack.ipv4.routeCacheCounters.evictions
        #expect(cache.capacity == 1024 && evictions > 300 && evictions < 1000)
        let missesBefore = cache.misses
        lab.deliver(established)
        #expect(lab.sent(on: lab.wire1).count == 64)
        let missed = cache.misses - missesBefore
        print("exhaustion: route cache, 20 000 destinations: \(cache.capacity) entries at most, "
              + "\(evictions) evictions, \(64 - missed) of 64 established flows still cached")
        #expect(missed <= 44)
        #expect(lab.poolIsAtBaseline)
    }

    /// 3 000 unresolved destinations in a connected /17: the neighbour table stops at its
    /// 1 024 entries (more are refused and their packets dropped with a reason), each holds at
    /// most 3 packets, a resolved next hop keeps forwarding meanwhile, and once the probes
    /// fail every buffer is back.
    @Test func aFloodOfUnresolvedNeighboursIsBoundedAndServiceContinues() throws {
        let lab = try ForwardLab()
        try lab.stack.apply("addr add 198.19.128.1/17 dev eth1")
        var peak = 0
        for chunk in 0..<15 {
            lab.deliver((0..<200).map { n in
                ForwardLab.frame(destination: IPv4Address(hostOrder: 0xC613_8000 | UInt32(chunk * 200 + n + 2)))
            })
            let probes = lab.sent(on: lab.wire1)
            #expect(probes.allSatisfy { $0.count >= 14 && $0[12] == 0x08 && $0[13] == 0x06 })   // ARP only
            #expect(lab.stack.neighbours.snapshot().count <= 1024 + 2)
            #expect(lab.pool.inUseCount <= lab.baseline + 3 * 1026)
            peak = max(peak, lab.pool.inUseCount - lab.baseline)
        }
        print("exhaustion: neighbours, 3 000 unresolved destinations: \(lab.stack.neighbours.snapshot().count) entries, "
              + "\(lab.stack.neighbours.statistics.tableFulls) refused, at most \(peak) buffers held")
        #expect(lab.stack.neighbours.statistics.tableFulls > 0)
        #expect(lab.drops(.notSpecified) == 0)   // every packet refused an entry has its reason
        // A next hop already resolved still forwards.
        lab.deliver(ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1)))
        #expect(lab.sent(on: lab.wire1).count == 1)
        // The probes fail; what waited is dropped and the pool is back.
        for _ in 0..<6 {
            lab.clock.advance(by: .seconds(1))
            lab.stack.neighbours.runTimers(worker: lab.worker)
            _ = lab.sent(on: lab.wire1)
        }
        #expect(lab.drops(.neighFailed) > 0)
        #expect(lab.poolIsAtBaseline)
    }

    /// 10 000 frames forwarded to a link whose peer takes none (its 256-frame ring full): the
    /// transmit queue's qdisc holds its limit (`txqueuelen`, 300 here) and drops the rest with
    /// QDISC_DROP, so the buffers held stop at ring + limit; pings to the router on the other
    /// link are answered throughout; once the peer reads again the queue drains in order, new
    /// traffic is forwarded, and every buffer is back.
    @Test func aFullTransmitQueueHoldsItsLimitAndTheOtherLinkIsServed() throws {
        let lab = try ForwardLab(ringSize: 256, transmitQueueLength: 300)
        var peak = 0
        for chunk in 0..<50 {
            lab.deliver((0..<200).map { n in
                ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1), payload: [UInt8(chunk), UInt8(n)] + Array(repeating: 0, count: 30))
            })
            peak = max(peak, lab.pool.inUseCount - lab.baseline)
            #expect(lab.pool.inUseCount - lab.baseline <= 256 + 300)
            lab.deliver(ForwardLab.echoRequest(to: ForwardLab.routerA, sequence: UInt16(chunk)))
            let replies = lab.sent(on: lab.wire0)
            #expect(replies.count == 1 && replies.first.map { $0[23] == 1 && $0[34] == 0 } == true)
        }
        let qdisc = try #require(lab.stack.core.qdisc(ifindex: lab.eth1.ifindex))
        #expect(qdisc.backlog == 300)
        #expect(lab.drops(.qdiscDrop) == UInt64(10_000 - 256 - 300))
        #expect(lab.eth1.stats[.txDropped] == UInt64(10_000 - 256 - 300))
        print("exhaustion: qdisc, 10 000 frames to a stalled link: \(qdisc.backlog) queued, "
              + "\(lab.drops(.qdiscDrop)) QDISC_DROP, at most \(peak) buffers held")
        // The peer reads again: ring first, then the queue, in the order they came.
        var order: [Int] = []
        func take() { order += lab.sent(on: lab.wire1).map { Int($0[34]) << 8 | Int($0[35]) } }
        take()
        while lab.stack.core.hasQdiscBacklog(worker: lab.worker) {
            lab.stack.core.runQdiscs(worker: lab.worker)
            take()
        }
        #expect(order.count == 256 + 300)
        #expect(order == order.sorted())
        lab.deliver(ForwardLab.frame(destination: IPv4Address(198, 19, 0, 2)))
        #expect(lab.sent(on: lab.wire1).count == 1)
        #expect(lab.drops(.notSpecified) == 0)
        #expect(lab.poolIsAtBaseline)
    }

    /// One worker steering 10 000 frames to another that does not run (RPS, as a stalled CPU's
    /// backlog): the backlog ring between them holds its size (`netdev_max_backlog`, 512
    /// here) and the rest are CPU_BACKLOG drops on the steering worker; frames of its own
    /// flows go on meanwhile; when the other worker runs it gets what was queued, in order,
    /// and every buffer is back.
    @Test func aStalledWorkersBacklogHoldsItsSizeAndTheSteeringWorkerGoesOn() throws {
        let pool = try PacketPool(capacity: 4096)
        let workers = [Worker(index: 0, pool: pool), Worker(index: 1, pool: pool)]
        let backlog = Backlog(workers: 2, ringSize: 512)
        let baseline = pool.inUseCount
        var kept = 0
        var steeredAway = 0
        var peak = 0
        var batch = PacketBatch()
        for n in 0..<10_000 {
            let skb = workers[0].cache.allocate()!
            let data = skb.put(60)!
            data.initializeMemory(as: UInt8.self, repeating: 0, count: 60)
            data.storeBytes(of: UInt32(n).bigEndian, toByteOffset: 14, as: UInt32.self)
            skb.hash = UInt32(truncatingIfNeeded: n &* 2_654_435_761) | 1
            if backlog.target(of: skb) == 0 { kept += 1 } else { steeredAway += 1 }
            batch.append(skb)
            if batch.isFull || n == 9_999 {
                backlog.steer(&batch, from: workers[0])
                workers[0].cache.free(&batch)   // what worker 0 keeps it processes (here: frees)
                peak = max(peak, pool.inUseCount - baseline)
            }
        }
        #expect(peak <= 512)
        #expect(workers[0].drops[.cpuBacklog] == UInt64(steeredAway - 512))
        print("exhaustion: backlog, 10 000 frames, \(steeredAway) to a stalled worker: 512 queued, "
              + "\(workers[0].drops[.cpuBacklog]) CPU_BACKLOG, \(kept) kept by the steering worker, at most \(peak) buffers held")
        var got: [Int] = []
        while backlog.drain(for: workers[1], into: &batch) > 0 {
            got += batch.indices.map { Int(UInt32(bigEndian: batch[$0].data.loadUnaligned(fromByteOffset: 14, as: UInt32.self))) }
            workers[1].cache.free(&batch)
        }
        #expect(got.count == 512 && got == got.sorted())
        workers[0].cache.drainAll()
        workers[1].cache.drainAll()
        #expect(pool.inUseCount == baseline)
    }
}
