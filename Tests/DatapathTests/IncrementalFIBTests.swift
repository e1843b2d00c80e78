import Foundation
import Synchronization
import Testing
@_spi(Internals) import Datapath
import DatapathCore
import DatapathWire

/// The FIB's incremental updates: each change paints only what its prefix covers, keeps route
/// slots stable, marks only the slots whose decisions it changes, and reuses replaced nodes
/// after a grace period — while readers see a whole table, before or after each change.
@Suite struct IncrementalFIBTests {
    /// Random adds, deletes (of covering routes too) and replaces, one publication each, the
    /// trie compared after every change with a brute-force longest-prefix match at the edges
    /// of every prefix and at random addresses.
    @Test(arguments: [11, 12, 13])
    func randomChangesAgreeWithABruteForceOracleAfterEachOne(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let fib = FIB()
        var table: [Route] = []
        let lengths = [0, 4, 8, 9, 15, 16, 17, 20, 24, 25, 28, 31, 32]
        for step in 0..<600 {
            let roll = random.next() % 10
            if roll < 6 || table.isEmpty {
                let length = lengths[Int(random.next() % UInt64(lengths.count))]
                // Nested under a few bases, so that prefixes cover one another a lot.
                let base = [0xC612_0000, 0xC613_0000, 0x0A00_0000][Int(random.next() % 3)]
                    | UInt32(truncatingIfNeeded: random.next()) & 0x3_FFFF
                let prefix = IPv4Prefix(address: IPv4Address(hostOrder: UInt32(base)), length: length)!
                let route = Route(prefix: prefix, gateway: IPv4Address(hostOrder: UInt32(step)), ifindex: 1 + step % 5,
                                  metric: UInt32(random.next() % 2) * 10)
                if table.contains(where: { $0.prefix == prefix && $0.metric == route.metric }) {
                    try fib.replace(route)
                    table.removeAll { $0.prefix == prefix && $0.metric == route.metric }
                } else {
                    try fib.add(route)
                }
                table.append(route)
            } else {
                let victim = table.remove(at: Int(random.next() % UInt64(table.count)))
                try fib.remove(victim.prefix, metric: victim.metric)
            }
            let snapshot = fib.snapshot
            var probes = (0..<64).map { _ in
                IPv4Address(hostOrder: 0xC612_0000 | UInt32(truncatingIfNeeded: random.next()) & 0x1_FFFF)
            }
            for route in table {
                let first = route.prefix.address.hostOrder, last = route.prefix.lastAddress.hostOrder
                probes += [first, last, first &- 1, last &+ 1].map(IPv4Address.init(hostOrder:))
            }
            let wrong = probes.filter { snapshot.lookup($0) != oracle(table, $0) }
            try #require(wrong.isEmpty, "step \(step): \(wrong.prefix(3)) after \(table.count) routes")
        }
    }

    /// A lookup thread beside a writer that adds and removes a /24 inside a /16 (and /32s in
    /// it) as fast as it can: every answer is the table before or after a change, never a
    /// torn one; replaced nodes are reused once the reader has passed a quiescent state.
    @Test func readersSeeAWholeTableBeforeOrAfterEachChange() throws {
        let fib = FIB()
        let quiescence = Quiescence(workers: 1)
        fib.quiescence = quiescence
        try fib.add(Route(prefix: IPv4Prefix("198.19.0.0/16")!, ifindex: 1))
        let stop = Atomic<Bool>(false)
        let torn = Atomic<Int>(0)
        let lookups = Atomic<Int>(0)
        let reader = Worker(pool: try PacketPool(capacity: 16))
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {   // its own thread: the global queue may be busy with other tests
            while !stop.load(ordering: .relaxed) {
                quiescence.quiescent(reader)
                let snapshot = fib.snapshot
                for _ in 0..<64 {
                    // Inside the /24: the /16's or the /24's (1 or 2); the /32 when present
                    // (3); outside: always the /16's.
                    let inside = snapshot.lookup(IPv4Address(198, 19, 1, 5))?.ifindex ?? 0
                    let host = snapshot.lookup(IPv4Address(198, 19, 1, 9))?.ifindex ?? 0
                    let outside = snapshot.lookup(IPv4Address(198, 19, 2, 5))?.ifindex ?? 0
                    if ![1, 2].contains(inside) || ![1, 2, 3].contains(host) || outside != 1 {
                        torn.add(1, ordering: .relaxed)
                    }
                    lookups.add(1, ordering: .relaxed)
                }
            }
            quiescence.offline(reader)
            done.signal()
        }
        // At least 3000 rounds, and on until the reader has looked up enough beside them.
        let deadline = Date().addingTimeInterval(30)
        var round = 0
        while (round < 3000 || lookups.load(ordering: .relaxed) < 20_000) && Date() < deadline {
            try fib.add(Route(prefix: IPv4Prefix("198.19.1.0/24")!, ifindex: 2))
            if round % 2 == 0 { try fib.add(Route(prefix: IPv4Prefix("198.19.1.9/32")!, ifindex: 3)) }
            try fib.remove(IPv4Prefix("198.19.1.0/24")!)
            if round % 2 == 0 { try fib.remove(IPv4Prefix("198.19.1.9/32")!) }
            round += 1
        }
        stop.store(true, ordering: .relaxed)
        done.wait()
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(lookups.load(ordering: .relaxed) >= 20_000)
        // 3000 rounds replaced thousands of nodes; reused, the trie stays a few nodes big.
        #expect(fib.snapshot.groupCount < 64, "\(fib.snapshot.groupCount) nodes in use")
    }

    /// A route change elsewhere leaves the worker's cached decisions in place (no miss); one
    /// that takes the flow's destination moves the flow at once, and removing it moves it back.
    @Test func cachedDecisionsSurviveChangesThatDoNotCoverThem() throws {
        let lab = try ForwardLab()
        let flow = ForwardLab.frame(destination: IPv4Address(198, 19, 4, 4))
        lab.deliver(flow)
        #expect(lab.sent(on: lab.wire1).count == 1)
        let misses = lab.stack.ipv4.routeCacheCounters.misses
        for n in 0..<50 { try lab.stack.apply("route add 198.21.\(n).0/24 via 198.18.2.2") }
        lab.deliver(flow)
        #expect(lab.sent(on: lab.wire1).count == 1)
        #expect(lab.stack.ipv4.routeCacheCounters.misses == misses)   // still cached
        try lab.stack.apply("route add 198.19.4.0/24 via 198.18.1.2")   // takes the flow: out of eth0
        lab.deliver(flow)
        #expect(lab.sent(on: lab.wire0).count == 1 && lab.sent(on: lab.wire1).isEmpty)
        try lab.stack.apply("route del 198.19.4.0/24")
        lab.deliver(flow)
        #expect(lab.sent(on: lab.wire1).count == 1 && lab.sent(on: lab.wire0).isEmpty)
        #expect(lab.poolIsAtBaseline)
    }

    /// A worker keeps its route cache's generation across publications that mark none of the
    /// slots its entries came from (so unrelated churn costs its hits nothing); random adds and
    /// deletes of /24s that take flows from their /16, mixed with unrelated ones, still move
    /// every flow at the next packet — with few cached slots and with more than it lists.
    @Test(arguments: [8, 40])
    func everyFlowFollowsItsRouteThroughChurnOfOthers(flows: Int) throws {
        let lab = try ForwardLab()
        var random = SplitMix64(seed: UInt64(flows))
        var specifics: [Int: Bool] = [:]   // 198.19.n.0/24 → out of eth0 (true) or eth1 (false)
        let destinations = (0..<flows).map { IPv4Address(198, 19, UInt8($0), 9) }
        for step in 0..<300 {
            let n = Int(random.next() % UInt64(flows))
            switch random.next() % 3 {
            case 0:
                if let viaEth0 = specifics.removeValue(forKey: n) {
                    _ = viaEth0
                    try lab.stack.apply("route del 198.19.\(n).0/24")
                } else {
                    let viaEth0 = random.next() % 2 == 0
                    specifics[n] = viaEth0
                    try lab.stack.apply("route add 198.19.\(n).0/24 via \(viaEth0 ? "198.18.1.2" : "198.18.2.2")")
                }
            default:
                let other = random.next() % 64
                try lab.stack.apply("route replace 198.21.\(other).0/24 via 198.18.2.2")
            }
            for _ in 0..<4 {
                let flow = Int(random.next() % UInt64(flows))
                lab.deliver(ForwardLab.frame(destination: destinations[flow]))
                let viaEth0 = specifics[flow] ?? false
                let out0 = lab.sent(on: lab.wire0).count, out1 = lab.sent(on: lab.wire1).count
                try #require(viaEth0 ? (out0 == 1 && out1 == 0) : (out0 == 0 && out1 == 1),
                             "step \(step): flow \(flow) out of eth0 \(out0), eth1 \(out1); expected \(viaEth0 ? "eth0" : "eth1")")
            }
        }
        #expect(lab.poolIsAtBaseline)
    }

    /// Route slots keep their numbers: a route's slot is the same before and after other
    /// routes come and go around it.
    @Test func slotsKeepTheirNumbersAcrossOtherChanges() throws {
        let fib = FIB()
        try fib.add(Route(prefix: IPv4Prefix("198.19.0.0/16")!, ifindex: 1))
        let slot = fib.snapshot.lookupIndex(IPv4Address(198, 19, 9, 9).hostOrder)
        for n in 0..<100 { try fib.add(Route(prefix: IPv4Prefix(address: IPv4Address(198, 20, UInt8(n), 0), length: 24)!, ifindex: 2)) }
        try fib.add(Route(prefix: IPv4Prefix("198.19.1.0/24")!, ifindex: 3))
        for n in 0..<100 { try fib.remove(IPv4Prefix(address: IPv4Address(198, 20, UInt8(n), 0), length: 24)!) }
        #expect(fib.snapshot.lookupIndex(IPv4Address(198, 19, 9, 9).hostOrder) == slot)
        #expect(fib.snapshot.lookup(IPv4Address(198, 19, 1, 1))?.ifindex == 3)
    }

    /// Nodes a change leaves holding one leaf throughout fold back into their parent (as DPDK
    /// recycles tbl8 groups): adding and deleting /28s under 2 000 different /24s leaves the
    /// trie the size it was, and lookups the same.
    @Test func churnOfLongPrefixesDoesNotGrowTheTrie() throws {
        let fib = FIB()
        try fib.add(Route(prefix: IPv4Prefix("198.18.0.0/15")!, ifindex: 1))
        try fib.add(Route(prefix: IPv4Prefix("198.19.7.0/24")!, ifindex: 2))
        let before = fib.snapshot.groupCount
        for n in 0..<2000 {
            let prefix = IPv4Prefix(address: IPv4Address(hostOrder: 0xC612_0000 | UInt32(n) << 8 | 0x10), length: 28)!
            try fib.add(Route(prefix: prefix, ifindex: 3))
            #expect(fib.snapshot.lookup(prefix.address)?.ifindex == 3)
            try fib.remove(prefix)
        }
        #expect(fib.snapshot.groupCount == before, "\(fib.snapshot.groupCount) nodes, \(before) before")
        #expect(fib.snapshot.lookup(IPv4Address(198, 18, 5, 17))?.ifindex == 1)
        #expect(fib.snapshot.lookup(IPv4Address(198, 19, 7, 1))?.ifindex == 2)
    }

    /// A table with room for few routes and nodes: adds (one or several at once), replaces and
    /// removes it refuses for want of room throw `tableFull` and change nothing — the trie
    /// agrees with the routes it reports after every step — removals keep working when adds
    /// are refused, and the table empties back to its root.
    @Test(arguments: [21, 22, 23])
    func aFullTableRefusesChangesWholeAndStillRemoves(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let fib = FIB(routes: 40, nodes: 64)
        var table: [Route] = []
        var refused = 0, done = 0
        func randomRoute(_ step: Int, _ random: inout SplitMix64) -> Route {
            let lengths = [0, 8, 12, 16, 20, 24, 25, 28, 32]
            let length = lengths[Int(random.next() % UInt64(lengths.count))]
            let base = [0x0A00_0000, 0xC612_0000, 0x6440_0000, 0xAC10_0000][Int(random.next() % 4)]
                | UInt32(truncatingIfNeeded: random.next()) & 0x00FF_FFFF
            return Route(prefix: IPv4Prefix(address: IPv4Address(hostOrder: UInt32(base)), length: length)!,
                         gateway: IPv4Address(hostOrder: UInt32(step)), ifindex: 1 + step % 3,
                         metric: UInt32(random.next() % 2) * 10)
        }
        func clashes(_ route: Route, _ list: [Route]) -> Bool {
            list.contains { $0.prefix == route.prefix && $0.metric == route.metric }
        }
        for step in 0..<1500 {
            let roll = random.next() % 10
            do {
                if roll < 5 || table.isEmpty {
                    var batch: [Route] = []
                    for _ in 0..<(1 + Int(random.next() % 3)) {
                        let route = randomRoute(step, &random)
                        if !clashes(route, table) && !clashes(route, batch) { batch.append(route) }
                    }
                    try fib.add(batch)
                    table += batch
                } else if roll < 7 {
                    let route = randomRoute(step, &random)
                    try fib.replace(route)
                    table.removeAll { $0.prefix == route.prefix && $0.metric == route.metric }
                    table.append(route)
                } else {
                    let victim = table[Int(random.next() % UInt64(table.count))]
                    try fib.remove(victim.prefix, metric: victim.metric)
                    table.removeAll { $0 == victim }
                }
                done += 1
            } catch {
                try #require(error == .tableFull, "step \(step): \(error)")
                refused += 1
            }
            let snapshot = fib.snapshot
            try #require(fib.count == table.count, "step \(step)")
            var probes: [IPv4Address] = []
            for route in table {
                let first = route.prefix.address.hostOrder, last = route.prefix.lastAddress.hostOrder
                probes += [first, last, first &- 1, last &+ 1].map(IPv4Address.init(hostOrder:))
            }
            let wrong = probes.filter { snapshot.lookup($0) != oracle(table, $0) }
            try #require(wrong.isEmpty, "step \(step): \(wrong.prefix(3)) after \(table.count) routes")
        }
        #expect(refused > 50 && done > 500, "\(refused) refused, \(done) done")
        // Longest first, each removal needs no more than the nodes adds leave spare.
        for route in table.sorted(by: { $0.prefix.length > $1.prefix.length }) {
            try fib.remove(route.prefix, metric: route.metric)
        }
        #expect(fib.count == 0)
        #expect(fib.snapshot.groupCount == 1)
        #expect(fib.snapshot.lookup(IPv4Address(198, 18, 0, 1)) == nil)
    }
}
