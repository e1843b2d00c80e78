import Testing
import Datapath
import DatapathCore
import DatapathWire

/// The forwarding fast path (`IPv4.receive(_:ifindex:macWord:worker:)`): for any traffic, the same frames out, the
/// same counters and drops as the staged path; a flow's frames in order; and it stands aside
/// whenever something must see the packets stage by stage.
@Suite struct FastForwardTests {
    /// A lab with a 576-byte-MTU route (198.19.200.0/24) besides the usual ones.
    func lab(fastPath: Bool, ingress: ForwardLab.Ingress = .device) throws -> ForwardLab {
        let lab = try ForwardLab(ingress: ingress)
        lab.stack.ipv4.fastPath = fastPath
        try lab.stack.apply("route add 198.19.200.0/24 via 198.18.2.2 mtu 576")
        return lab
    }

    func fastPackets(_ lab: ForwardLab) -> UInt64 { lab.worker.stages.packets(lab.stack.ipv4.fastForwardStage) }

    /// Everything observable of a lab after traffic: frames out on each wire grouped by flow
    /// (source, destination, protocol, TOS: in order within a flow), every IP and ICMP
    /// counter, every drop reason.
    struct Outcome: Equatable {
        var flows: [String: [[UInt8]]] = [:]
        var ip: [UInt64] = []
        var icmp: [UInt64] = []
        var drops: [UInt64] = []

        init(_ lab: ForwardLab) {
            for (name, wire) in [("wire0", lab.wire0), ("wire1", lab.wire1)] {
                for var frame in lab.sent(on: wire) {
                    // What the router originates carries identifications from a per-worker
                    // counter that starts at random: compared without them (and the checksum).
                    if frame.count >= 34 && frame[26] == 198 && frame[27] == 18 && frame[29] == 1 {
                        for i in [18, 19, 24, 25] { frame[i] = 0 }
                    }
                    let key = frame.count >= 34 && frame[12] == 0x08 && frame[13] == 0x00
                        ? "\(name) \(SentIPv4(frame).source) > \(SentIPv4(frame).destination) \(frame[23]) \(frame[15])"
                        : "\(name) \(frame[12]) \(frame[13])"
                    flows[key, default: []].append(frame)
                }
            }
            ip = IPStatistics.Counter.allCases.map { lab.stack.ipv4.statistics[$0] }
            icmp = ICMPStatistics.Counter.allCases.map { lab.stack.ipv4.icmp.statistics[$0] }
            drops = DropReason.allCases.map { lab.drops($0) }
        }

        /// A flow's frames by IP identification and length, for failure messages.
        static func identifications(_ frames: [[UInt8]]?) -> [String] {
            (frames ?? []).map { $0.count >= 34 ? "\(UInt16($0[18]) << 8 | UInt16($0[19]))/\($0.count)" : "\($0.count)" }
        }
    }

    @Test func aFlowTakesTheFastPathAndItsFramesLeaveAsTheStagedPathSendsThem() throws {
        let fast = try lab(fastPath: true)
        let staged = try lab(fastPath: false)
        var frames = (0..<10).map {
            ForwardLab.frame(destination: ip("198.19.3.4"), identification: UInt16($0))
        }
        // Link-layer padding on one: trimmed either way.
        frames[4] += [UInt8](repeating: 0xEE, count: 12)
        for lab in [fast, staged] {
            lab.deliver(frames[0])  // a route cache miss: routed, cached, forwarded
            lab.deliver(Array(frames[1...]))
        }
        #expect(fastPackets(fast) == 10)
        #expect(fastPackets(staged) == 0)
        let out = fast.sent(on: fast.wire1)
        #expect(out == staged.sent(on: staged.wire1))
        #expect(out.count == 10 && out.allSatisfy { $0.count == 66 && SentIPv4($0).ttl == 63 })
        #expect(out.allSatisfy { SentIPv4($0).headerChecksumIsValid && SentIPv4($0).destinationMAC == ForwardLab.hostBMAC })
        #expect(fast.stack.ipv4.statistics[.forwDatagrams] == 10 && fast.stack.ipv4.statistics[.inReceives] == 10)
        #expect(fast.stack.ipv4.routeCacheCounters.hits == 9 && fast.stack.ipv4.routeCacheCounters.misses == 1)
        #expect(staged.stack.ipv4.routeCacheCounters.hits == 9 && staged.stack.ipv4.routeCacheCounters.misses == 1)
        #expect(fast.poolIsAtBaseline && staged.poolIsAtBaseline)
    }

    /// Random batches mixing everything a router meets: cached and new flows, TTLs 1 and 2,
    /// frames over a route's MTU with and without DF, options, bad checksums (some marked
    /// verified by the device), other hosts' and broadcast frames, pings to the router, no
    /// route, a neighbour still unresolved, padding, truncation, GSO super-packets.
    @Test(arguments: [7, 1812, 90210])
    func randomMixedTrafficGetsTheSameFramesCountersAndDrops(seed: UInt64) throws {
        let fast = try lab(fastPath: true)
        let staged = try lab(fastPath: false)
        var random = SplitMix64(seed: seed)
        let batches = (0..<24).map { _ in
            (0..<Int(random.next() % 96 + 1)).map { Self.randomFrame(&random, identification: UInt16($0)) }
        }
        let (a, b) = outcomes(fast, staged, batches)
        let differing = Set(a.flows.keys).union(b.flows.keys).filter { a.flows[$0] != b.flows[$0] }
        #expect(differing.isEmpty, "\(differing.sorted().map { "\($0): \(Outcome.identifications(a.flows[$0])) vs \(Outcome.identifications(b.flows[$0]))" })")
        #expect(a.ip == b.ip)
        #expect(a.icmp == b.icmp)
        #expect(a.drops == b.drops)
        #expect(fastPackets(fast) > 50)
        #expect(fast.stack.ipv4.routeCacheCounters.hits == staged.stack.ipv4.routeCacheCounters.hits)
        #expect(fast.stack.ipv4.routeCacheCounters.misses == staged.stack.ipv4.routeCacheCounters.misses)
        #expect(fast.poolIsAtBaseline, "\(fast.pool.inUseCount - fast.baseline) in use")
        #expect(staged.poolIsAtBaseline, "\(staged.pool.inUseCount - staged.baseline) in use")
    }

    /// Traffic to the router itself mixed with forwarded traffic: when the fast path delivers
    /// what it finds routed here (`fastLocalDelivery`), the same frames leave (replies, echoes,
    /// ICMP errors), the same datagrams reach the socket, and every counter and drop is the
    /// same as when those frames take `ip_rcv` and `ip_rcv_finish`.
    @Test(arguments: [5, 99, 2024])
    func trafficToTheRouterIsDeliveredTheSameByTheFastPath(seed: UInt64) throws {
        final class Echo: UDPReceiver, @unchecked Sendable {
            let udp: UDP
            var payloads: [[UInt8]] = []
            init(_ udp: UDP) { self.udp = udp }
            func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
                for i in datagrams.indices {
                    payloads.append(Array(UnsafeRawBufferPointer(start: datagrams[i].data, count: datagrams[i].length)))
                    datagrams[i].udpDestination = datagrams[i].udpRemote
                }
                _ = try! udp.send(&datagrams, from: socket, worker: worker)
                return 0
            }
        }
        var outcomes: [Outcome] = []
        var payloads: [[[UInt8]]] = []
        var fastLocal: [UInt64] = []
        // ICMP errors without rate limits: which ones a limit lets through depends on the order
        // they are made in, which may differ (next comment).
        var limits = ICMPRateLimitParameters.linuxDefaults
        limits.mask = 0
        limits.burst = 100_000
        for on in [true, false] {
            let lab = try ForwardLab(rateLimits: limits)
            lab.stack.ipv4.settings.fastLocalDelivery = on
            let echo = Echo(lab.stack.udp)
            try lab.stack.udp.open(1, local: SocketAddress(ForwardLab.routerA, 7), receiver: echo)
            var random = SplitMix64(seed: seed)
            for round in 0..<24 {
                // Every third batch only to us, of kinds the fast path takes (a server's batch:
                // the fast path hands it over whole).
                let localOnly = round % 3 == 2
                let frames = (0..<Int(random.next() % 48 + 1)).map { n -> [UInt8] in
                    let id = UInt16(n)
                    let port = UInt16(4000 + random.next() % 4)
                    let kind = localOnly ? [0, 1, 2, 3, 4, 5, 7][Int(random.next() % 7)] : random.next() % 10
                    switch kind {
                    case 0, 1: return UDPReceiveTests.datagram(sourcePort: port, port: 7, payload: [UInt8(n), 1, 2])
                    case 8:  // the same flow with IP options: staged, and what follows it in the batch too
                        return ForwardLab.withOptions(UDPReceiveTests.datagram(sourcePort: port, port: 7, payload: [UInt8(n), 9]),
                                                      [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1])
                    case 2: return UDPReceiveTests.datagram(sourcePort: port, port: 9, payload: [UInt8(n)])
                    case 3: return ForwardLab.echoRequest(to: ForwardLab.routerA, sequence: id)
                    case 4: return ForwardLab.frame(destination: ForwardLab.routerA, protocol: IPProtocol(rawValue: 253),
                                                    identification: id)
                    case 5: return UDPReceiveTests.datagram(sourcePort: port, port: 7, payload: [UInt8(n)], checksum: 0x1111)
                    case 6:  // a first fragment to us (MF): held for reassembly, freed at the end
                        var frame = ForwardLab.frame(destination: ForwardLab.routerA, payload: Array(0..<32),
                                                     dontFragment: false, identification: 0x2000 | id)
                        frame[20] = 0x20
                        frame[24] = 0; frame[25] = 0
                        let sum = ~InternetChecksum.fold(InternetChecksum.sum(Array(frame[14..<34]), count: 20))
                        frame[24] = UInt8(sum >> 8); frame[25] = UInt8(sum & 0xFF)
                        return frame
                    case 7: return ForwardLab.frame(destination: ForwardLab.routerA, identification: id, tos: 0x10)
                    default: return ForwardLab.frame(destination: ip("198.19.3.\(random.next() % 4)"), identification: id)
                    }
                }
                lab.deliver(frames)
            }
            outcomes.append(Outcome(lab))
            payloads.append(echo.payloads)
            fastLocal.append(lab.worker.stages.packets(lab.stack.ipv4.fastLocalStage))
            _ = lab.stack.releaseHeldPackets(workers: [lab.worker])
            #expect(lab.poolIsAtBaseline, "\(lab.pool.inUseCount - lab.baseline) in use")
        }
        // The router's own ICMP messages are about different flows, and come in another order
        // when a batch's local frames are delivered in two runs (those the fast path took, then
        // the rest): compared as sets. Every other flow in order.
        func normalized(_ outcome: Outcome) -> [String: [[UInt8]]] {
            outcome.flows.mapValues { frames in
                frames.first.map { $0.count > 23 && $0[23] == 1 } == true ? frames.sorted { $0.lexicographicallyPrecedes($1) } : frames
            }
        }
        let (a, b) = (outcomes[0], outcomes[1])
        let (flowsA, flowsB) = (normalized(a), normalized(b))
        let differing = Set(flowsA.keys).union(flowsB.keys).filter { flowsA[$0] != flowsB[$0] }
        #expect(differing.isEmpty, "\(differing.sorted())")
        #expect(a.ip == b.ip && a.icmp == b.icmp && a.drops == b.drops)
        #expect(payloads[0] == payloads[1] && !payloads[0].isEmpty)
        #expect(fastLocal[0] > 20 && fastLocal[1] == 0)
    }

    /// Frames a bond's slave or a bridge's port hands up to the device that holds the router's
    /// address take the fast path there, after the rx_handler and both levels' taps, with the
    /// staged path's frames, counters and drops. (Frames for eth0's MAC are readdressed to
    /// the upper device's own.)
    @Test(arguments: [ForwardLab.Ingress.bond, .bridge], [7, 1812])
    func randomMixedTrafficThroughABondOrABridgeGetsTheSameOutcome(ingress: ForwardLab.Ingress, seed: UInt64) throws {
        let fast = try lab(fastPath: true, ingress: ingress)
        let staged = try lab(fastPath: false, ingress: ingress)
        let upperMAC = try #require(fast.stack.link(named: fast.ingressName)?.device.macAddress)
        var random = SplitMix64(seed: seed)
        let batches = (0..<24).map { _ in
            (0..<Int(random.next() % 96 + 1)).map { n -> [UInt8] in
                var frame = Self.randomFrame(&random, identification: UInt16(n))
                frame.withUnsafeMutableBytes { raw in
                    if raw.count >= 6 && MACAddress(loadingFrom: raw.baseAddress!) == mac(0x01) {
                        upperMAC.store(to: raw.baseAddress!)
                    }
                }
                return frame
            }
        }
        // And the other way: host B to host A, out through the bond or the bridge.
        let back = (0..<20).map {
            ForwardLab.frame(source: ForwardLab.hostB, destination: ForwardLab.hostA, identification: UInt16($0),
                             toMAC: mac(0x11), fromMAC: ForwardLab.hostBMAC)
        }
        for lab in [fast, staged] { lab.deliver(back, on: lab.eth1) }
        #expect(fastPackets(fast) == 20)
        let (a, b) = outcomes(fast, staged, batches)
        let differing = Set(a.flows.keys).union(b.flows.keys).filter { a.flows[$0] != b.flows[$0] }
        #expect(differing.isEmpty, "\(differing.sorted().map { "\($0): \(Outcome.identifications(a.flows[$0])) vs \(Outcome.identifications(b.flows[$0]))" })")
        #expect(a.flows["wire0 198.18.2.2 > 198.18.1.2 17 0"]?.count == 20)
        #expect(a.ip == b.ip)
        #expect(a.icmp == b.icmp)
        #expect(a.drops == b.drops)
        #expect(fastPackets(fast) > 70)
        #expect(fastPackets(staged) == 0)
        #expect(fast.stack.ipv4.routeCacheCounters.hits == staged.stack.ipv4.routeCacheCounters.hits)
        #expect(fast.stack.ipv4.routeCacheCounters.misses == staged.stack.ipv4.routeCacheCounters.misses)
        #expect(fast.poolIsAtBaseline, "\(fast.pool.inUseCount - fast.baseline) in use")
        #expect(staged.poolIsAtBaseline, "\(staged.pool.inUseCount - staged.baseline) in use")
    }

    /// Delivers the same batches to both labs, then the unresolved neighbour's ARP reply (what
    /// waits for it leaves too), and returns what each lab shows.
    func outcomes(_ fast: ForwardLab, _ staged: ForwardLab, _ batches: [[[UInt8]]]) -> (Outcome, Outcome) {
        let reply = arpFrame(.reply, senderMAC: mac(0xC7), sender: ip("198.18.2.77"), targetMAC: mac(0x11),
                             target: ForwardLab.routerB, destination: mac(0x11))
        for lab in [fast, staged] {
            for frames in batches { lab.deliver(frames, prepare: Self.prepare) }
            lab.deliver(reply, on: lab.eth1)
        }
        return (Outcome(fast), Outcome(staged))
    }

    /// Identification 0xB0xx marks a frame whose device says the checksum was verified;
    /// 0x60xx a GSO super-packet of 600-byte segments.
    static func prepare(_ skb: SKB) {
        let id = skb.data.load(fromByteOffset: 18, as: UInt8.self)
        if id == 0xB0 { skb.checksumState = .unnecessary }
        if id == 0x60 {
            skb.gsoSize = 600
            skb.gsoType = .tcpv4
        }
    }

    static func randomFrame(_ random: inout SplitMix64, identification n: UInt16) -> [UInt8] {
        let flow = ip("198.19.\(random.next() % 3).\(random.next() % 8)")
        let tos: UInt8 = random.next() % 4 == 0 ? 0x10 : 0
        switch random.next() % 40 {
        case 0:
            return ForwardLab.frame(destination: flow, ttl: 1, identification: n)
        case 1:
            return ForwardLab.frame(destination: flow, ttl: 2, identification: n)
        case 2:
            let big = ip("198.19.200.\(random.next() % 4)")
            return ForwardLab.frame(destination: big, payload: [UInt8](repeating: 0x42, count: 1200),
                                    dontFragment: random.next() % 2 == 0, identification: n)
        case 3:
            // Record route, room for two addresses.
            return ForwardLab.withOptions(ForwardLab.frame(destination: flow, identification: n),
                                          [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        case 4:
            var frame = ForwardLab.frame(destination: flow, identification: random.next() % 2 == 0 ? 0xB000 | n : n)
            frame[24] ^= 0x5A
            return frame
        case 5:
            return ForwardLab.frame(destination: flow, identification: n, toMAC: mac(0x77))
        case 6:
            return ForwardLab.frame(destination: flow, identification: n, toMAC: .broadcast)
        case 7:
            return ForwardLab.echoRequest(to: ForwardLab.routerA, sequence: n)
        case 8:
            return ForwardLab.frame(destination: ip("198.18.200.9"), identification: n)
        case 9:
            return ForwardLab.frame(destination: ip("198.18.2.77"), identification: n)
        case 10:
            return ForwardLab.frame(destination: flow, identification: n) + [UInt8](repeating: 0, count: 9)
        case 11:
            return Array(ForwardLab.frame(destination: flow, identification: n).dropLast(5))
        case 12:
            var tcp = [UInt8](repeating: 0, count: 20)
            tcp[12] = 0x50
            return ForwardLab.frame(destination: flow, protocol: .tcp, payload: tcp + [UInt8](repeating: 0x77, count: 1500),
                                    identification: 0x6000 | n)
        case 13:
            return ForwardLab.frame(destination: ForwardLab.hostB, identification: n, tos: tos)
        default:
            return ForwardLab.frame(destination: flow, identification: n, tos: tos)
        }
    }

    /// With FORWARD rules in the filter table the fast path stays on: it forwards what a rule
    /// accepts (counting the rule) or no rule matches, and leaves what a rule drops or rejects
    /// to the staged path. Frames, counters, drops and every rule's packet and byte counts are
    /// the staged path's.
    @Test(arguments: [3, 77])
    func forwardFilterRulesKeepTheFastPathAndCountTheSame(seed: UInt64) throws {
        let fast = try lab(fastPath: true)
        let staged = try lab(fastPath: false)
        for lab in [fast, staged] {
            // The random frames' UDP ports are 1 → 515 (their payload's first bytes).
            try lab.stack.apply("""
                filter add forward dst 198.19.1.0/24 proto udp dport 515 drop
                filter add forward dst 198.19.2.0/24 proto udp reject with icmp-admin-prohibited
                filter add forward iif eth0 oif eth1 proto udp sport 1 accept
                filter add forward proto tcp accept
                filter add input proto icmp drop
                """)
        }
        var random = SplitMix64(seed: seed)
        let batches = (0..<16).map { _ in
            (0..<Int(random.next() % 96 + 1)).map { Self.randomFrame(&random, identification: UInt16($0)) }
        }
        let (a, b) = outcomes(fast, staged, batches)
        #expect(a == b)
        let counts = { (lab: ForwardLab) in lab.stack.filter.allRules.map { [$0.packets, $0.bytes] } }
        #expect(counts(fast) == counts(staged), "\(counts(fast)) vs \(counts(staged))")
        #expect(counts(fast)[2][0] > 50 && counts(fast)[0][0] > 0 && counts(fast)[1][0] > 0)
        #expect(fastPackets(fast) > 10)
        #expect(fast.poolIsAtBaseline && staged.poolIsAtBaseline)
    }

    /// With the route cache off the fast path routes every frame anew, and the frames, counters
    /// and drops are still the staged path's.
    @Test func withTheRouteCacheOffEveryFrameIsRoutedAndTheOutcomeIsTheSame() throws {
        let fast = try lab(fastPath: true)
        let staged = try lab(fastPath: false)
        var random = SplitMix64(seed: 4242)
        for lab in [fast, staged] { lab.stack.ipv4.setRouteCacheEnabled(false) }
        let batches = (0..<8).map { _ in (0..<64).map { Self.randomFrame(&random, identification: UInt16($0)) } }
        let (a, b) = outcomes(fast, staged, batches)
        #expect(a == b)
        #expect(fastPackets(fast) > 20)
        #expect(fast.stack.ipv4.routeCacheCounters.misses == staged.stack.ipv4.routeCacheCounters.misses)
        #expect(fast.stack.ipv4.routeCacheCounters.hits == 0 && staged.stack.ipv4.routeCacheCounters.hits == 0)
        #expect(fast.stack.ipv4.routeCache(worker: 0).liveEntries(epoch: fast.stack.fib.epoch) == 0)
        #expect(fast.poolIsAtBaseline && staged.poolIsAtBaseline)
    }

    /// A frame of a cached flow that the fast path must leave (too long for the MTU, GSO) holds
    /// back the rest of the batch for its neighbour: the flow leaves in order.
    @Test func aFlowStaysInOrderWhenOneOfItsFramesTakesTheStagedPath() throws {
        let lab = try lab(fastPath: true)
        let destination = ip("198.19.200.5")
        lab.deliver(ForwardLab.frame(destination: destination, identification: 0))
        _ = lab.sent(on: lab.wire1)
        var tcp = [UInt8](repeating: 0, count: 20)
        tcp[12] = 0x50
        let frames = [
            ForwardLab.frame(destination: destination, identification: 1),
            ForwardLab.frame(destination: destination, identification: 2),
            ForwardLab.frame(destination: destination, payload: [UInt8](repeating: 1, count: 1000), dontFragment: false,
                             identification: 3),
            ForwardLab.frame(destination: destination, identification: 4),
            ForwardLab.frame(destination: destination, protocol: .tcp,
                             payload: tcp + [UInt8](repeating: 0x77, count: 1000), identification: 0x6005),
            ForwardLab.frame(destination: destination, identification: 6),
        ]
        lab.deliver(frames, prepare: Self.prepare)
        let identifications = lab.sent(on: lab.wire1).map { UInt16($0[18]) << 8 | UInt16($0[19]) }
        // Two fragments of 3; GSO segments of 600 bytes are over the 576 MTU with DF: frag
        // needed (dropped, ICMP back to host A).
        #expect(identifications == [1, 2, 3, 3, 4, 6], "\(identifications)")
        #expect(fastPackets(lab) == 3)
        #expect(lab.drops(.fragmentationNeeded) == 1)
        #expect(lab.sent(on: lab.wire0).count == 1)
        #expect(lab.poolIsAtBaseline)
    }

    final class CountingTap: PacketTap, @unchecked Sendable {
        var frames = 0
        func tap(_ batch: borrowing PacketBatch, device: any NetDevice, worker: Worker) { frames += batch.count }
    }

    final class CountingHook: NetfilterHookFunction, @unchecked Sendable {
        var packets = 0
        func hook(_ hook: NetfilterHook, batch: borrowing PacketBatch, verdicts: UnsafeMutablePointer<NetfilterVerdict>,
                  worker: Worker) { packets += batch.count }
    }

    /// A netfilter function on a hook the fast path skips (other than the filter table), a
    /// second one beside the filter table on FORWARD, forwarding off, a tap on the device, or
    /// the switch: every frame goes stage by stage.
    @Test(arguments: ["prerouting", "forward", "filter and forward", "postrouting", "forwarding off", "tap", "switch"])
    func somethingThatMustSeeEachStageTurnsTheFastPathOff(reason: String) throws {
        let lab = try lab(fastPath: true)
        let tap = CountingTap()
        let hook = CountingHook()
        switch reason {
        case "prerouting": lab.stack.netfilter.register(hook, on: .preRouting, priority: 0)
        case "forward": lab.stack.netfilter.register(hook, on: .forward, priority: 0)
        case "filter and forward":
            try lab.stack.apply("filter add forward proto tcp drop")
            lab.stack.netfilter.register(hook, on: .forward, priority: 10)
        case "postrouting": lab.stack.netfilter.register(hook, on: .postRouting, priority: 0)
        case "forwarding off": lab.stack.ipv4.forwarding = false
        case "tap": lab.stack.core.addTap(tap, device: lab.eth0)
        default: lab.stack.ipv4.fastPath = false
        }
        let frame = ForwardLab.frame(destination: ip("198.19.1.1"))
        for _ in 0..<4 { lab.deliver(frame) }
        // Forwarding off: host unreachable back to host A instead.
        #expect(lab.sent(on: lab.wire1).count == (reason == "forwarding off" ? 0 : 4))
        #expect(lab.sent(on: lab.wire0).count == (reason == "forwarding off" ? 4 : 0))
        #expect(fastPackets(lab) == 0)
        if reason == "tap" { #expect(tap.frames == 4) }
        if ["prerouting", "forward", "filter and forward", "postrouting"].contains(reason) { #expect(hook.packets == 4) }
        #expect(lab.poolIsAtBaseline)
    }

    /// FORWARD rules added and deleted again leave no trace, however often: the filter table
    /// stays on the hook once (accepting all while empty), the fast path takes the frames
    /// again, and a rule counts each packet once (found by the soak: each re-add registered
    /// the table again, running it twice and keeping the fast path off for good).
    @Test func forwardRulesComingAndGoingLeaveNoTrace() throws {
        let lab = try lab(fastPath: true)
        let frame = ForwardLab.frame(destination: ip("198.19.1.1"))
        for round in 1...3 {
            try lab.stack.apply("filter add forward proto tcp drop")
            lab.deliver([frame, frame])
            #expect(fastPackets(lab) == UInt64(4 * round - 2), "round \(round), with the rule")
            try lab.stack.apply("filter del forward 1")
            lab.deliver([frame, frame])
            #expect(fastPackets(lab) == UInt64(4 * round), "round \(round), without it")
        }
        #expect(lab.sent(on: lab.wire1).count == 12)
        // The staged path runs the table once per packet: a rule counts each packet once.
        lab.stack.ipv4.fastPath = false
        try lab.stack.apply("filter add forward proto udp accept")
        lab.deliver([frame, frame, frame])
        #expect(lab.stack.filter.allRules.first?.packets == 3)
        #expect(lab.sent(on: lab.wire1).count == 3)
        #expect(lab.poolIsAtBaseline)
    }

    /// A route change moves the flow at once: the cached entry is stale, the next frame is
    /// routed anew, and the fast path follows the new route.
    @Test func aRouteChangeIsFollowedAtOnce() throws {
        let lab = try lab(fastPath: true)
        try lab.stack.addNeighbour(ip("198.18.2.3"), linkAddress: mac(0xB3), device: "eth1")
        let frame = ForwardLab.frame(destination: ip("198.19.9.9"))
        lab.deliver([frame, frame])
        lab.deliver([frame, frame])
        try lab.stack.addRoute(RouteSpec(prefix: IPv4Prefix("198.19.9.0/24")!, gateway: ip("198.18.2.3")))
        lab.deliver([frame, frame])
        lab.deliver([frame, frame])
        let next = lab.sent(on: lab.wire1).map { SentIPv4($0).destinationMAC }
        #expect(next == [ForwardLab.hostBMAC, ForwardLab.hostBMAC, ForwardLab.hostBMAC, ForwardLab.hostBMAC,
                         mac(0xB3), mac(0xB3), mac(0xB3), mac(0xB3)])
        #expect(fastPackets(lab) == 8)
        #expect(lab.poolIsAtBaseline)
    }
}
