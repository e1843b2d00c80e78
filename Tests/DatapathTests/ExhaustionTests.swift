import Testing
@testable import Datapath
import DatapathCore
import DatapathWire

/// #13 item 6: bounded resources flooded — memory stays at the bound, and legitimate traffic
/// is still served meanwhile. (Reassembly: ReassemblyTests/ReassemblyExhaustionTests; the
/// bridge FDB: BridgeTests; socket buffers: UDPSocketTests; the FIB: IncrementalFIBTests.)
@Suite struct ExhaustionTests {
    /// 20 000 new destinations through a 1 024-entry route cache: it never holds more than its
    /// size, evicts, and a flow routed before the flood is still forwarded after it.
    @Test func theRouteCacheStaysAtItsSizeUnderARandomDestinationFlood() throws {
        let lab = try ForwardLab(cacheCapacity: 1024)
        let cache = lab.stack.ipv4.state(lab.worker).routeCache
        lab.deliver(ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1)))
        var random = SplitMix64(seed: 5)
        for _ in 0..<20 {
            lab.deliver((0..<1000).map { _ in
                ForwardLab.frame(destination: IPv4Address(hostOrder: 0xC613_0000 | UInt32(truncatingIfNeeded: random.next()) & 0xFFFF))
            })
            _ = lab.sent(on: lab.wire1)
            #expect(cache.liveEntries(epoch: lab.stack.ipv4.state(lab.worker).epoch) <= cache.capacity)
        }
        #expect(cache.capacity == 1024 && lab.stack.ipv4.routeCacheCounters.evictions > 10_000)
        print("exhaustion: route cache, 20 000 destinations: \(cache.capacity) entries at most, "
              + "\(lab.stack.ipv4.routeCacheCounters.evictions) evictions")
        lab.deliver(ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1)))
        #expect(lab.sent(on: lab.wire1).count == 1)
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
            lab.clock.advance(by: 1_000_000_000)
            lab.stack.neighbours.runTimers(worker: lab.worker)
            _ = lab.sent(on: lab.wire1)
        }
        #expect(lab.drops(.neighFailed) > 0)
        #expect(lab.poolIsAtBaseline)
    }
}
