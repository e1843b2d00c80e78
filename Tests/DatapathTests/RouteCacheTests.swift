import Testing
import Datapath
import DatapathCore
import DatapathWire

/// The per-worker route cache: hits, invalidation by epoch, bounded under a flood, and the same
/// decisions with the cache off.
@Suite struct RouteCacheTests {
    @Test func theSecondPacketOfAFlowIsAHit() throws {
        let lab = try ForwardLab()
        lab.deliver(ForwardLab.frame(destination: ip("198.19.1.1")))
        lab.deliver(ForwardLab.frame(destination: ip("198.19.1.1")))
        lab.deliver(ForwardLab.frame(destination: ip("198.19.1.2")))
        let counters = lab.stack.ipv4.routeCacheCounters
        #expect(counters.hits == 1 && counters.misses == 2)
        #expect(lab.sent(on: lab.wire1).count == 3)
    }

    @Test func aRouteChangeTakesEffectOnTheNextPacket() throws {
        let lab = try ForwardLab()
        try lab.stack.addNeighbour(ip("198.18.2.3"), linkAddress: mac(0xB3), device: "eth1")
        let frame = ForwardLab.frame(destination: ip("198.19.5.5"))
        lab.deliver(frame)
        #expect(lab.sent(on: lab.wire1).map { SentIPv4($0).destinationMAC } == [ForwardLab.hostBMAC])
        try lab.stack.addRoute(RouteSpec(prefix: IPv4Prefix("198.19.5.0/24")!, gateway: ip("198.18.2.3")))
        lab.deliver(frame)
        #expect(lab.sent(on: lab.wire1).map { SentIPv4($0).destinationMAC } == [mac(0xB3)])
        try lab.stack.removeRoute(IPv4Prefix("198.19.5.0/24")!)
        lab.deliver(frame)
        #expect(lab.sent(on: lab.wire1).map { SentIPv4($0).destinationMAC } == [ForwardLab.hostBMAC])
        try lab.stack.removeRoute(IPv4Prefix("198.19.0.0/16")!)
        lab.deliver(frame)
        #expect(lab.sent(on: lab.wire1).isEmpty)
        #expect(lab.drops(.ipNoRoute) == 1)
        _ = lab.sent(on: lab.wire0)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aRemovedNeighbourIsLetGoAndReplaced() throws {
        let lab = try ForwardLab()
        let frame = ForwardLab.frame(destination: ip("198.19.5.5"))
        lab.deliver(frame)
        #expect(lab.sent(on: lab.wire1).count == 1)
        #expect(lab.stack.neighbours.remove(ForwardLab.hostB, ifindex: lab.eth1.ifindex))
        try lab.stack.addNeighbour(ForwardLab.hostB, linkAddress: mac(0xBB), device: "eth1")
        lab.deliver(frame)
        #expect(lab.sent(on: lab.wire1).map { SentIPv4($0).destinationMAC } == [mac(0xBB)])
    }

    @Test(arguments: [true, false])
    func aFloodOfRandomDestinationsStaysBoundedAndCorrect(cacheOn: Bool) throws {
        let lab = try ForwardLab(cacheCapacity: 256)
        lab.stack.ipv4.setRouteCacheEnabled(cacheOn)
        try lab.stack.addNeighbour(ip("198.18.2.3"), linkAddress: mac(0xB3), device: "eth1")
        try lab.stack.addRoute(RouteSpec(prefix: IPv4Prefix("198.19.128.0/17")!, gateway: ip("198.18.2.3")))
        var random = SystemRandomNumberGenerator()
        var expected: [UInt64] = []
        for _ in 0..<20 {
            var frames: [[UInt8]] = []
            for _ in 0..<200 {
                let low = UInt32.random(in: 0..<65536, using: &random)
                let destination = IPv4Address(hostOrder: 0xC613_0000 | low)
                expected.append(UInt64(destination.hostOrder) << 8 | (low >= 0x8000 ? 0xB3 : 0xB2))
                frames.append(ForwardLab.frame(destination: destination))
            }
            lab.deliver(frames)
        }
        // Every destination to its next hop. Frames for different destinations may leave in
        // another order: across next hops the split reorders, and within one the fast path
        // sends destinations already cached before those routed anew.
        let sent = lab.sent(on: lab.wire1).map { UInt64(SentIPv4($0).destination.hostOrder) << 8 | UInt64($0[5]) }
        let sameDecisions = sent.sorted() == expected.sorted()
        #expect(sent.count == expected.count)
        #expect(sameDecisions)
        let cache = lab.stack.ipv4.routeCache(worker: 0)
        #expect(cache.capacity == 256)
        #expect(cache.liveEntries(epoch: lab.stack.fib.epoch) <= 256)
        if cacheOn {
            // Full sets give up a way on one miss in 32 (bimodal insertion).
            #expect(cache.evictions > 50 && cache.evictions < 400)
        } else {
            #expect(cache.liveEntries(epoch: lab.stack.fib.epoch) == 0 && cache.hits == 0)
        }
        #expect(lab.poolIsAtBaseline)
    }
}
