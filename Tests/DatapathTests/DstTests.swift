import Testing
@testable import Datapath
import DatapathCore
import DatapathWire

/// The worker's dst entries (Linux's `dst_entry`): statics, one per route in use, owned ones.
@Suite struct DstTableTests {
    @Test func staticsNameEveryDecisionWithoutAWayOut() {
        let table = DstTable()
        for raw in 0..<11 {
            let input = DstInput(rawValue: UInt8(raw))!
            for flags: RouteFlags in [[], .broadcast, .local] {
                let entry = table[DstTable.staticIndex(input, flags: flags)]
                #expect(entry.input == input && entry.flags == flags && entry.output == .discard)
            }
        }
        #expect(table[0].input == DstInput.none)
        #expect(RouteResult(input: .localDeliver, flags: .local).dst
                == DstTable.staticIndex(.localDeliver, flags: .local))
    }

    @Test func aGivenUpEntryStaysReadableUntilTheBatchEndsAndItsHandlesFailAtOnce() {
        let table = DstTable()
        let entry = DstEntry(forwardingTo: 3, gateway: 0xC612_0202, neighbour: nil, mtu: 1500, epoch: 7)
        let index = table.make(entry)
        let handle = table.handle(index)
        #expect(table.check(handle, epoch: 7) == index)
        #expect(table.check(handle, epoch: 8) == nil)          // the FIB moved on: obsolete
        let live = table.live
        table.release(index)
        table.release(index)                                   // twice: still one slot freed
        #expect(table.check(handle, epoch: 7) == nil)
        #expect(table[index.rawValue] == entry)                // packets in flight still read it
        table.endBatch()
        #expect(table.live == live - 1)
        #expect(table[index.rawValue].input == DstInput.none)
        let again = table.make(entry)
        #expect(again == index)                                // the slot is reused…
        #expect(table.check(handle, epoch: 7) == nil)          // …under a new generation
        #expect(table.check(table.handle(again), epoch: 7) == again)
        // Statics are never given up.
        let local = DstIndex(rawValue: DstTable.staticIndex(.localDeliver, flags: []))
        table.release(local)
        table.endBatch()
        #expect(table[local.rawValue].input == .localDeliver)
        #expect(table.check(table.handle(local), epoch: 99) == local)
    }

    /// A handle taken on an entry already given up in this batch (a packet in flight that a
    /// holder keeps) never names the entry that reuses the slot.
    @Test func aHandleTakenAfterReleaseDoesNotNameTheSlotsNextEntry() {
        let table = DstTable()
        let entry = DstEntry(forwardingTo: 3, gateway: 0xC612_0202, neighbour: nil, mtu: 1500, epoch: 7)
        let index = table.make(entry)
        table.release(index)
        let late = table.handle(index)                          // taken while still readable
        table.endBatch()
        let other = table.make(DstEntry(forwardingTo: 4, gateway: 0xC612_0303, neighbour: nil, mtu: 1400, epoch: 7))
        #expect(other == index)                                 // the same slot…
        #expect(table.check(late, epoch: 7) == nil)             // …which the late handle does not name
    }

    @Test func theTableGrowsAndKeepsWhatItHolds() {
        let table = DstTable(capacity: 64)
        let start = table.capacity
        let made = (0..<(3 * start)).map {
            table.make(DstEntry(forwardingTo: 1, gateway: UInt32($0), neighbour: nil, mtu: 1500, epoch: 1))
        }
        #expect(table.capacity >= 3 * start)
        for (n, index) in made.enumerated() { #expect(table[index.rawValue].gateway == UInt32(n)) }
        #expect(Set(made).count == made.count)
    }

    @Test func aBundleIsAChainWhosePathIsThePlainRouteUnderIt() {
        let table = DstTable()
        let route = table.make(DstEntry(forwardingTo: 2, gateway: 1, neighbour: nil, mtu: 1500, epoch: 1))
        let inner = table.make(DstEntry(forwardingTo: 2, gateway: 1, neighbour: nil, mtu: 1438, epoch: 1))
        let outer = table.make(DstEntry(forwardingTo: 2, gateway: 1, neighbour: nil, mtu: 1400, epoch: 1))
        table.setChild(inner, of: outer)
        table.setChild(route, of: inner)
        #expect(table.path(outer) == route && table.path(inner) == route && table.path(route) == route)
    }
}

@Suite struct DstRoutingTests {
    /// Every forwarded packet points at its route's entry — one per route, shared by the
    /// destinations it covers; a route change elsewhere leaves them alone, and so does one that
    /// takes part of a route's range (the route itself did not change: Linux keeps the dst
    /// cached on its next hop); replacing the route gives its entry up.
    @Test func forwardedPacketsShareTheirRoutesEntryUntilTheFIBChanges() throws {
        let lab = try ForwardLab()
        let state = lab.stack.ipv4.state(lab.worker)
        let before = state.dsts.live
        var seen: [UInt32] = []
        lab.stack.ipv4.fastPath = false
        let tap = DstRecorder { seen.append($0.dst) }
        lab.stack.netfilter.register(tap, on: .postRouting, priority: 0)
        lab.deliver([ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1)),
                     ForwardLab.frame(destination: IPv4Address(198, 19, 7, 9)),
                     ForwardLab.frame(destination: ForwardLab.hostB)])
        #expect(seen.count == 3)
        #expect(seen[0] == seen[1] && seen[0] != seen[2])      // 198.19/16 via B, and B's subnet
        let entry = state.dsts[seen[0]]
        #expect(entry.input == .forward && entry.output == .ipOutput && entry.mtu == 1500)
        #expect(entry.gateway == ForwardLab.hostB.hostOrder && entry.neighbour != 0)
        #expect(state.dsts[seen[2]].gateway == 0)              // connected: no gateway
        #expect(state.dsts.live == before + 2)
        try lab.stack.apply("route add 198.20.0.0/16 via 198.18.2.2")
        lab.deliver(ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1)))
        #expect(state.dsts.live == before + 2 && seen[3] == seen[0])   // kept: 198.19/16 did not change
        try lab.stack.apply("route add 198.19.7.0/24 via 198.18.2.2")
        lab.deliver(ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1)))
        #expect(state.dsts.live == before + 2 && seen[4] == seen[0])   // 198.19/16's entry kept
        lab.deliver(ForwardLab.frame(destination: IPv4Address(198, 19, 7, 9)))
        #expect(state.dsts.live == before + 3 && seen[5] != seen[0])   // the /24's own
        try lab.stack.apply("route replace 198.19.0.0/16 via 198.18.2.2 mtu 1400")
        lab.deliver(ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1)))
        #expect(seen[6] != seen[0] && state.dsts[seen[6]].mtu == 1400)   // a new route: a new entry
        #expect(lab.sent(on: lab.wire1).count == 7)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aKeptRouteIsCheckedLikeDstCheck() throws {
        let lab = try ForwardLab()
        let ipv4 = lab.stack.ipv4
        let route = ipv4.routeOutput(to: IPv4Address(198, 19, 1, 1), tos: 0, mark: 0, worker: lab.worker)
        #expect(route.input == .forward)
        let handle = ipv4.holdRoute(route, worker: lab.worker)
        #expect(ipv4.checkRoute(handle, worker: lab.worker))
        try lab.stack.apply("route add 198.20.0.0/16 via 198.18.2.2")       // elsewhere: still current
        #expect(ipv4.checkRoute(handle, worker: lab.worker))
        try lab.stack.apply("route add 198.19.1.0/24 via 198.18.2.2")       // takes part of its range
        #expect(!ipv4.checkRoute(handle, worker: lab.worker))
        let again = ipv4.holdRoute(ipv4.routeOutput(to: IPv4Address(198, 19, 1, 1), tos: 0, mark: 0, worker: lab.worker),
                                   worker: lab.worker)
        #expect(ipv4.checkRoute(again, worker: lab.worker))
        // A more specific route elsewhere in 198.19/16's range: a route held through the /16
        // is checked again (as Linux's genid would make it), and held again it is current —
        // the /16's entry itself stays.
        func hold(_ destination: IPv4Address) -> DstHandle {
            ipv4.holdRoute(ipv4.routeOutput(to: destination, tos: 0, mark: 0, worker: lab.worker), worker: lab.worker)
        }
        let other = hold(IPv4Address(198, 19, 2, 2))
        try lab.stack.apply("route add 198.19.5.0/24 via 198.18.2.2")
        #expect(!ipv4.checkRoute(other, worker: lab.worker))
        let rerouted = hold(IPv4Address(198, 19, 2, 2))
        #expect(ipv4.checkRoute(rerouted, worker: lab.worker) && rerouted.index == other.index)
        try lab.stack.apply("addr add 198.18.9.1/24 dev eth1")              // an address: every cached decision
        #expect(!ipv4.checkRoute(again, worker: lab.worker))
    }
}

/// A POST_ROUTING function that reports each packet's skb and accepts it.
final class DstRecorder: NetfilterHookFunction, @unchecked Sendable {
    let record: (SKB) -> Void
    init(_ record: @escaping (SKB) -> Void) { self.record = record }
    func hook(_ hook: NetfilterHook, batch: borrowing PacketBatch, verdicts: UnsafeMutablePointer<NetfilterVerdict>,
              worker: Worker) {
        for i in batch.indices { record(batch[i]) }
    }
}

@Suite struct PMTUExceptionTests {
    let ms: UInt64 = 1_000_000

    @Test func anExceptionOnlyLowersIsClampedToTheMinimumAndExpires() {
        let table = PMTUExceptions()
        let host = IPv4Address(198, 19, 0, 1)
        #expect(table.isEmpty && table.mtu(for: host, now: 0) == nil)
        #expect(table.update(host, mtu: 1600, routeMTU: 1500, now: 0) == 1500)   // not above the route
        #expect(table.isEmpty)
        #expect(table.update(host, mtu: 1280, routeMTU: 1500, now: 0) == 1280)
        #expect(table.update(host, mtu: 1400, routeMTU: 1500, now: 1) == 1280)   // not raised
        #expect(table.update(host, mtu: 300, routeMTU: 1500, now: 2) == 552)     // route.min_pmtu
        #expect(table.mtu(for: host, now: 600_000 * ms) == 552)
        #expect(table.mtu(for: host, now: 600_000 * ms + 2) == nil)             // mtu_expires
        #expect(table.expire(now: 600_001 * ms) == 1 && table.isEmpty)
    }

    @Test func theTableIsBoundedAndGivesUpTheOldestFirst() {
        var parameters = PMTUExceptions.Parameters()
        parameters.maximumEntries = 4
        let table = PMTUExceptions(parameters: parameters)
        for n in 0..<6 {
            table.update(IPv4Address(198, 19, 0, UInt8(n)), mtu: 1000, routeMTU: 1500, now: UInt64(n) * ms)
        }
        #expect(table.count == 4)
        #expect(table.mtu(for: IPv4Address(198, 19, 0, 0), now: 10 * ms) == nil)
        #expect(table.mtu(for: IPv4Address(198, 19, 0, 5), now: 10 * ms) == 1000)
    }

    /// A router on the way to host B says our packets must fit 1000 bytes (ICMP fragmentation
    /// needed quoting one we sent); what the stack sends to B from then on — here a 1400-byte
    /// echo reply — leaves in fragments of at most 1000 bytes.
    @Test func fragmentationNeededLowersThePathMTUOfWhatTheStackSends() throws {
        let lab = try ForwardLab()
        let quoted = ForwardLab.frame(source: ForwardLab.routerB, destination: ForwardLab.hostB, protocol: .icmp,
                                      payload: Array(repeating: 0, count: 8))
        let error = ForwardLab.icmpErrorFromHostB(code: 4, info: 1000, quoting: Array(quoted[14...]))
        lab.deliver([error], on: lab.eth1)
        #expect(lab.stack.ipv4.pmtuExceptions.mtu(for: ForwardLab.hostB, now: lab.clock.now()) == 1000)
        let route = lab.stack.ipv4.routeOutput(to: ForwardLab.hostB, tos: 0, mark: 0, worker: lab.worker)
        #expect(route.mtu == 1000 && lab.stack.ipv4.state(lab.worker).dsts[route.dst].mtu == 1000)

        let request = ForwardLab.echoRequest(to: ForwardLab.routerB, data: Array(repeating: 0x5A, count: 1372))
        let echo = ForwardLab.frame(source: ForwardLab.hostB, destination: ForwardLab.routerB, protocol: .icmp,
                                    payload: Array(request[34...]), dontFragment: false, toMAC: mac(0x11),
                                    fromMAC: ForwardLab.hostBMAC)
        lab.deliver([echo], on: lab.eth1)
        let replies = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(replies.count == 2)
        #expect(replies.allSatisfy { $0.frame.count - 14 <= 1000 })
        #expect(replies.map { $0.frame.count - 14 - 20 }.reduce(0, +) == 8 + 1372)
        #expect(lab.poolIsAtBaseline)
    }
}
