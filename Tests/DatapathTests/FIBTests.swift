import Testing
@_spi(Internals) import Datapath
import DatapathCore
import DatapathWire

/// The obvious answer: the longest prefix holding the address, then the lowest metric.
func oracle(_ routes: [Route], _ destination: IPv4Address) -> Route? {
    routes.filter { $0.prefix.contains(destination) }
        .min { ($0.prefix.length, $1.metric) > ($1.prefix.length, $0.metric) }
}

@Suite struct FIBTests {
    @Test(arguments: [1, 2, 3, 4])
    func longestPrefixMatchAgreesWithABruteForceOracle(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let fib = FIB()
        var routes: [Route] = []
        var seen = Set<IPv4Prefix>()
        // Lengths spread over every level of the trie, /0 and /32 included.
        for i in 0..<400 {
            let length = [0, 1, 7, 8, 12, 15, 16, 17, 20, 23, 24, 25, 28, 30, 31, 32][Int(random.next() % 16)]
            // Half the prefixes nest inside 198.18.0.0/15 so that they overlap a lot.
            let base = i % 2 == 0 ? 0xC612_0000 | UInt32(truncatingIfNeeded: random.next()) & 0x1_FFFF
                                  : UInt32(truncatingIfNeeded: random.next())
            let prefix = IPv4Prefix(address: IPv4Address(hostOrder: base), length: length)!
            guard seen.insert(prefix).inserted || i % 5 == 0 else { continue }
            let route = Route(prefix: prefix, gateway: IPv4Address(hostOrder: UInt32(i)), ifindex: 1 + i % 4,
                              metric: UInt32(random.next() % 3) * 10)
            if routes.contains(where: { $0.prefix == prefix && $0.metric == route.metric }) { continue }
            routes.append(route)
        }
        try fib.add(routes)
        let snapshot = fib.snapshot
        var probes: [IPv4Address] = (0..<20_000).map { _ in IPv4Address(hostOrder: UInt32(truncatingIfNeeded: random.next())) }
        for route in routes {
            let first = route.prefix.address.hostOrder, last = route.prefix.lastAddress.hostOrder
            probes += [first, last, first &- 1, last &+ 1].map(IPv4Address.init(hostOrder:))
        }
        var mismatches = 0
        for destination in probes where snapshot.lookup(destination) != oracle(routes, destination) {
            mismatches += 1
        }
        #expect(mismatches == 0)
        #expect(probes.count > 20_000)
    }

    @Test func theLowestMetricWinsAndRemovalFallsBack() throws {
        let fib = FIB()
        let prefix = IPv4Prefix("198.19.0.0/16")!
        try fib.add(Route(prefix: prefix, gateway: ip("198.18.2.2"), ifindex: 2, metric: 20))
        try fib.add(Route(prefix: prefix, gateway: ip("198.18.3.2"), ifindex: 3, metric: 10))
        try fib.add(Route(prefix: IPv4Prefix("0.0.0.0/0")!, gateway: ip("198.18.9.9"), ifindex: 9))
        #expect(fib.snapshot.lookup(ip("198.19.5.5"))?.gateway == ip("198.18.3.2"))
        try fib.remove(prefix, metric: 10)
        #expect(fib.snapshot.lookup(ip("198.19.5.5"))?.gateway == ip("198.18.2.2"))
        try fib.remove(prefix)
        #expect(fib.snapshot.lookup(ip("198.19.5.5"))?.gateway == ip("198.18.9.9"))
        #expect(throws: RouteError.notFound(prefix)) { try fib.remove(prefix) }
    }

    @Test func duplicatesAreRefusedAndChangeNothing() throws {
        let fib = FIB()
        let route = Route(prefix: IPv4Prefix("198.19.1.0/24")!, gateway: ip("198.18.2.2"), ifindex: 2)
        try fib.add(route)
        let generation = fib.generation
        #expect(throws: RouteError.exists(route)) {
            try fib.add([Route(prefix: IPv4Prefix("198.19.2.0/24")!, ifindex: 2), route])
        }
        #expect(fib.generation == generation)
        #expect(fib.snapshot.lookup(ip("198.19.2.1")) == nil)
        #expect(RouteError.exists(route).description == "route exists: 198.19.1.0/24 via 198.18.2.2 dev 2")
        // Within one list: the first route that repeats an earlier one (prefix, metric and
        // type) is named, or the first that clashes with the table when that comes earlier.
        let a = Route(prefix: IPv4Prefix("198.19.3.0/24")!, ifindex: 2)
        let b = Route(prefix: IPv4Prefix("198.19.4.0/24")!, ifindex: 2)
        let other = Route(prefix: IPv4Prefix("198.19.3.0/24")!, ifindex: 2, metric: 5)
        let sameAsB = Route(prefix: IPv4Prefix("198.19.4.0/24")!, gateway: ip("198.18.2.9"), ifindex: 2)
        #expect(throws: RouteError.exists(sameAsB)) { try fib.add([b, a, other, sameAsB, a]) }
        #expect(throws: RouteError.exists(route)) { try fib.add([b, route, a, a]) }
        #expect(throws: RouteError.exists(a)) { try fib.add([a, b, a, route]) }
        #expect(fib.generation == generation)
        try fib.add([a, other, Route(prefix: IPv4Prefix("198.19.3.0/24")!, type: .blackhole)])
        #expect(fib.count == 4)
    }

    @Test func typesSurviveAndEveryChangeBumpsTheGeneration() throws {
        let fib = FIB()
        let start = fib.generation
        try fib.add([
            Route(prefix: IPv4Prefix("198.19.99.0/24")!, type: .blackhole),
            Route(prefix: IPv4Prefix("198.19.98.0/24")!, type: .unreachable),
            Route(prefix: IPv4Prefix("198.19.97.0/24")!, type: .prohibit),
            Route(prefix: IPv4Prefix("198.18.0.1/32")!, type: .local, ifindex: 1),
            Route(prefix: IPv4Prefix("198.18.0.255/32")!, type: .broadcast, ifindex: 1),
            Route(prefix: IPv4Prefix("198.18.0.0/24")!, ifindex: 1),
        ])
        #expect(fib.generation == start + 1)
        let snapshot = fib.snapshot
        #expect(snapshot.lookup(ip("198.19.99.7"))?.type == .blackhole)
        #expect(snapshot.lookup(ip("198.19.98.7"))?.type == .unreachable)
        #expect(snapshot.lookup(ip("198.19.97.7"))?.type == .prohibit)
        #expect(snapshot.lookup(ip("198.18.0.1"))?.type == .local)
        #expect(snapshot.lookup(ip("198.18.0.255"))?.type == .broadcast)
        #expect(snapshot.lookup(ip("198.18.0.7"))?.type == .unicast)
        #expect(snapshot.lookup(ip("198.20.0.1")) == nil)
        fib.removeRoutes(ifindex: 1)
        #expect(fib.generation == start + 2)
        #expect(fib.snapshot.lookup(ip("198.18.0.7")) == nil)
        #expect(fib.snapshot.lookup(ip("198.19.99.7"))?.type == .blackhole)
        // The old snapshot is unchanged for whoever still holds it.
        #expect(snapshot.lookup(ip("198.18.0.7"))?.type == .unicast)
    }

    /// A batch holds publication back until its outermost level ends: readers keep the snapshot
    /// from before, the epoch does not move, and then one generation carries every change —
    /// also those made before the body threw. Duplicates within one `add` are refused whole.
    @Test func aBatchPublishesOnceAtItsEnd() throws {
        let fib = FIB()
        try fib.add(Route(prefix: IPv4Prefix("198.19.0.0/16")!, ifindex: 1))
        let start = fib.generation, epoch = fib.epoch, before = fib.snapshot
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try fib.batch { () throws(Stop) in
                try? fib.add(Route(prefix: IPv4Prefix("198.19.1.0/24")!, ifindex: 2))
                fib.batch {
                    try? fib.remove(IPv4Prefix("198.19.0.0/16")!)
                    try? fib.add(Route(prefix: IPv4Prefix("198.19.2.0/24")!, ifindex: 3))
                }
                #expect(fib.generation == start && fib.epoch == epoch && fib.snapshot === before)
                #expect(fib.count == 2)
                throw Stop()
            }
        }
        // Published: a new generation; route changes leave the cache epoch alone (they mark
        // the slots they change instead).
        #expect(fib.generation == start + 1 && fib.publishedGeneration == start + 1 && fib.epoch == epoch)
        #expect(fib.snapshot.lookup(ip("198.19.1.1"))?.ifindex == 2)
        #expect(fib.snapshot.lookup(ip("198.19.2.1"))?.ifindex == 3)
        #expect(fib.snapshot.lookup(ip("198.19.3.1")) == nil)
        #expect(before.lookup(ip("198.19.3.1"))?.ifindex == 1)
        // A batch that changed nothing publishes nothing.
        fib.batch {}
        #expect(fib.generation == start + 1)
        let twice = Route(prefix: IPv4Prefix("198.19.9.0/24")!, ifindex: 1)
        #expect(throws: RouteError.exists(twice)) { try fib.add([twice, twice]) }
        #expect(fib.count == 2 && fib.generation == start + 1)
    }
}
