import Testing
import Datapath
import DatapathCore
import DatapathWire

@Suite struct NeighbourStateMachineTests {
    /// The pending queue is bounded in bytes of true size (`unres_qlen_bytes`): room for three
    /// packets here, and the linuxDefaults' 212 992 bytes hold a 64 KiB datagram's 45 fragments.
    @Test func outputToAnUnknownNeighbourBroadcastsAProbeAndQueuesTheNewestThree() throws {
        #expect(NeighbourParameters.linuxDefaults.pendingQueueBytes >= 45 * (PacketPool.defaultBufferSize + MemoryLayout<SKBHead>.stride))
        var parameters = NeighbourParameters.linuxDefaults
        parameters.pendingQueueBytes = 3 * (PacketPool.defaultBufferSize + MemoryLayout<SKBHead>.stride)
        let lab = try NeighbourLab(parameters: parameters)
        let neighbour = lab.neighbours.lookupOrCreate(NeighbourLab.peer, device: lab.eth0)!
        #expect(lab.state() == NeighbourState.none)
        lab.output([1, 2, 3, 4, 5], via: neighbour)
        #expect(lab.state() == .incomplete)
        let probes = lab.sent().compactMap(SentARP.init)
        #expect(probes.count == 1)
        #expect(probes.first == SentARP(arpFrame(.request, senderMAC: lab.eth0.macAddress, sender: NeighbourLab.local,
                                                target: NeighbourLab.peer)))
        #expect(lab.neighbours.snapshot().first?.pending == 3)
        #expect(lab.worker.drops[.neighQueueFull] == 2)

        // The answer sends the three that waited (the newest), each with the resolved header.
        lab.peerReplies()
        #expect(lab.state() == .reachable)
        let flushed = lab.sent()
        #expect(flushed.map { $0[14 + 20] } == [3, 4, 5])
        for frame in flushed {
            #expect(Array(frame[0..<14]) == Array(ethernetFrame(destination: NeighbourLab.peerMAC, source: lab.eth0.macAddress)[0..<14]))
        }
        #expect(lab.pool.inUseCount == 0)
    }

    /// `ip neigh replace … nud permanent` on an entry still resolving: what waited goes out with
    /// the administrator's address (here at the next timer round, the first a worker runs).
    @Test func aStaticEntryFromTheControlPlaneSendsWhatWaitedAtTheNextTimerRound() throws {
        let lab = try NeighbourLab()
        let neighbour = lab.neighbours.lookupOrCreate(NeighbourLab.peer, device: lab.eth0)!
        lab.output([1, 2], via: neighbour)
        #expect(lab.sent().compactMap(SentARP.init).count == 1)
        let staticMAC = mac(0xBB)
        #expect(lab.neighbours.addStatic(NeighbourLab.peer, linkAddress: staticMAC, device: lab.eth0) === neighbour)
        #expect(lab.state() == .permanent)
        #expect(lab.neighbours.snapshot().first?.pending == 2)
        lab.neighbours.runTimers(worker: lab.worker)
        let flushed = lab.sent()
        #expect(flushed.map { $0[14 + 20] } == [1, 2])
        for frame in flushed {
            #expect(Array(frame[0..<14]) == Array(ethernetFrame(destination: staticMAC, source: lab.eth0.macAddress)[0..<14]))
        }
        #expect(lab.neighbours.snapshot().first?.pending == 0)
        lab.neighbours.runTimers(worker: lab.worker)
        #expect(lab.sent().isEmpty)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func incompleteProbesThreeTimesOneSecondApartThenFails() throws {
        let lab = try NeighbourLab()
        let neighbour = lab.neighbours.lookupOrCreate(NeighbourLab.peer, device: lab.eth0)!
        lab.output([1, 2], via: neighbour)
        #expect(lab.sent().count == 1)
        lab.advance(seconds: 0.5)
        #expect(lab.sent().isEmpty)
        lab.advance(seconds: 0.5)
        #expect(lab.sent().compactMap(SentARP.init).map(\.destination) == [.broadcast])
        lab.advance(seconds: 1)
        #expect(lab.sent().count == 1)
        #expect(lab.state() == .incomplete)
        lab.advance(seconds: 1)
        #expect(lab.state() == .failed)
        #expect(lab.sent().isEmpty)
        #expect(lab.worker.drops[.neighFailed] == 2)
        #expect(lab.neighbours.statistics.resolutionsFailed == 1)
        #expect(lab.neighbours.statistics.probesSent == 3)

        // FAILED starts over on the next packet.
        lab.output([3], via: neighbour)
        #expect(lab.state() == .incomplete)
        #expect(lab.sent().count == 1)
        lab.peerReplies()
        #expect(lab.sent().map { $0[14 + 20] } == [3])
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func reachableTurnsStaleAfterTheRandomReachableTime() throws {
        let lab = try NeighbourLab()
        let reachable = lab.neighbours.reachableTime
        #expect(reachable >= .seconds(15) && reachable < .seconds(45))
        _ = lab.resolvedPeer()
        lab.advance(seconds: Double(reachable.nanoseconds) / 1e9 - 0.5)
        #expect(lab.state() == .reachable)
        lab.advance(seconds: 1)
        #expect(lab.state() == .stale)
        #expect(lab.sent().isEmpty)
    }

    @Test func staleOutputSendsAndDelaysThenProbesByUnicastThenFails() throws {
        let lab = try NeighbourLab()
        let neighbour = lab.resolvedPeer()
        lab.advance(seconds: 46)
        #expect(lab.state() == .stale)

        lab.output([7], via: neighbour)
        #expect(lab.state() == .delay)
        #expect(lab.sent().map { $0[14 + 20] } == [7])
        lab.advance(seconds: 4.9)
        #expect(lab.state() == .delay)
        lab.advance(seconds: 0.2)
        #expect(lab.state() == .probe)
        let probe = lab.sent().compactMap(SentARP.init)
        #expect(probe.map(\.destination) == [NeighbourLab.peerMAC])
        #expect(probe.first?.repr.targetHardwareAddress == NeighbourLab.peerMAC)
        // Packets keep flowing to the known address while probing.
        lab.output([8], via: neighbour)
        #expect(lab.sent().map { $0[14 + 20] } == [8])
        lab.advance(seconds: 1)
        lab.advance(seconds: 1)
        #expect(lab.sent().compactMap(SentARP.init).count == 2)
        lab.advance(seconds: 1)
        #expect(lab.state() == .failed)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func probeAnsweredBecomesReachable() throws {
        let lab = try NeighbourLab()
        let neighbour = lab.resolvedPeer()
        lab.advance(seconds: 46)
        lab.output([1], via: neighbour)
        lab.advance(seconds: 5.1)
        #expect(lab.state() == .probe)
        lab.peerReplies()
        #expect(lab.state() == .reachable)
        _ = lab.sent()
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func delayConfirmedByAnUpperLayerReturnsToReachable() throws {
        let lab = try NeighbourLab()
        let neighbour = lab.resolvedPeer()
        lab.advance(seconds: 46)
        lab.output([1], via: neighbour)
        #expect(lab.state() == .delay)
        lab.advance(seconds: 2)
        lab.neighbours.confirm(neighbour)
        lab.advance(seconds: 3.1)
        #expect(lab.state() == .reachable)
        #expect(lab.sent().compactMap(SentARP.init).isEmpty)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func reachableExpiringWithinTheDelayOfItsLastUseGoesToDelayNotStale() throws {
        // A short reachable time (1–3 s) expires within 5 s of the slow-path use that resolved it.
        var parameters = NeighbourParameters()
        parameters.baseReachableTime = .seconds(2)
        let lab = try NeighbourLab(parameters: parameters)
        let reachable = Double(lab.neighbours.reachableTime.nanoseconds) / 1e9
        #expect(reachable >= 1 && reachable < 3)
        _ = lab.resolvedPeer()
        lab.advance(seconds: reachable + 0.01)
        #expect(lab.state() == .delay)
        lab.advance(seconds: 5)
        #expect(lab.state() == .probe)
        #expect(lab.sent().compactMap(SentARP.init).map(\.destination) == [NeighbourLab.peerMAC])
        #expect(lab.pool.inUseCount == 0)
    }
}

@Suite struct ARPTests {
    @Test func requestForOurAddressIsAnsweredAndTheAskerLearnedStale() throws {
        let lab = try NeighbourLab()
        lab.deliver(arpFrame(.request, senderMAC: NeighbourLab.peerMAC, sender: NeighbourLab.peer,
                             target: NeighbourLab.local))
        let reply = lab.sent()
        #expect(reply == [arpFrame(.reply, senderMAC: lab.eth0.macAddress, sender: NeighbourLab.local,
                                   targetMAC: NeighbourLab.peerMAC, target: NeighbourLab.peer,
                                   destination: NeighbourLab.peerMAC)])
        let entry = lab.neighbours.snapshot()
        #expect(entry.map(\.description) == ["198.18.0.2 dev eth0 lladdr 02:00:00:00:00:aa STALE"])
        #expect(lab.arp[.repliesSent] == 1)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func addressProbeWithZeroSenderIsAnsweredWithoutLearning() throws {
        let lab = try NeighbourLab()
        lab.deliver(arpFrame(.request, senderMAC: NeighbourLab.peerMAC, sender: .zero, target: NeighbourLab.local))
        let reply = lab.sent().compactMap(SentARP.init)
        #expect(reply.map(\.repr.targetProtocolAddress) == [.zero])
        #expect(reply.map(\.destination) == [NeighbourLab.peerMAC])
        #expect(lab.neighbours.snapshot().isEmpty)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func requestsForOtherAddressesAndUnsolicitedRepliesCreateNothing() throws {
        let lab = try NeighbourLab()
        lab.deliver(arpFrame(.request, senderMAC: NeighbourLab.peerMAC, sender: NeighbourLab.peer,
                             target: ip("198.18.0.77")))
        lab.deliver(arpFrame(.reply, senderMAC: mac(0xBB), sender: ip("198.18.0.3"), targetMAC: lab.eth0.macAddress,
                             target: NeighbourLab.local, destination: lab.eth0.macAddress))
        #expect(lab.sent().isEmpty)
        #expect(lab.neighbours.snapshot().isEmpty)
        #expect(lab.arp[.ignored] == 2)
        #expect(lab.worker.drops.block[Int(DropReason.arpInvalid.rawValue)] == 0)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func gratuitousARPMovesAKnownEntryAndRefreshesTheCachedHeader() throws {
        let lab = try NeighbourLab()
        let neighbour = lab.resolvedPeer()
        lab.output([1], via: neighbour)
        #expect(lab.sent().map { Array($0[0..<6]) } == [[2, 0, 0, 0, 0, 0xAA]])
        // Within locktime, but gratuitous: it overrides.
        let moved = mac(0xCC)
        lab.deliver(arpFrame(.request, senderMAC: moved, sender: NeighbourLab.peer, target: NeighbourLab.peer))
        #expect(lab.neighbours.snapshot().map(\.description) == ["198.18.0.2 dev eth0 lladdr 02:00:00:00:00:cc STALE"])
        lab.output([2], via: neighbour)
        #expect(lab.state() == .delay)
        #expect(lab.sent().map { Array($0[0..<6]) } == [[2, 0, 0, 0, 0, 0xCC]])
        // An unknown sender's gratuitous ARP creates nothing (arp_accept=0).
        lab.deliver(arpFrame(.request, senderMAC: mac(0xDD), sender: ip("198.18.0.9"), target: ip("198.18.0.9")))
        #expect(lab.neighbours.snapshot().count == 1)
        #expect(lab.arp[.gratuitousReceived] == 2)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func aSecondReplyWithinLocktimeDoesNotReplaceTheFirst() throws {
        let lab = try NeighbourLab()
        _ = lab.resolvedPeer()
        lab.peerReplies(from: mac(0xEE))
        #expect(lab.neighbours.snapshot().first?.linkAddress == NeighbourLab.peerMAC)
        lab.clock.advance(by: .seconds(1.1))
        lab.peerReplies(from: mac(0xEE))
        #expect(lab.neighbours.snapshot().first?.linkAddress == mac(0xEE))
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func permanentEntriesIgnoreARPAndUseTheFastPath() throws {
        let lab = try NeighbourLab()
        let neighbour = lab.neighbours.addStatic(NeighbourLab.peer, linkAddress: mac(0x55), device: lab.eth0)!
        lab.peerReplies(from: mac(0x66))
        lab.deliver(arpFrame(.request, senderMAC: mac(0x66), sender: NeighbourLab.peer, target: NeighbourLab.peer))
        #expect(lab.state() == .permanent)
        lab.output([9], via: neighbour)
        let frames = lab.sent()
        #expect(frames.map { Array($0[0..<14]) } == [Array(ethernetFrame(destination: mac(0x55), source: lab.eth0.macAddress)[0..<14])])
        lab.advance(seconds: 120)
        #expect(lab.state() == .permanent)
        #expect(lab.neighbours.snapshot().map(\.description) == ["198.18.0.2 dev eth0 lladdr 02:00:00:00:00:55 PERMANENT"])
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func malformedARPIsDroppedWithAReason() throws {
        let lab = try NeighbourLab()
        var truncated = arpFrame(.request, senderMAC: NeighbourLab.peerMAC, sender: NeighbourLab.peer, target: NeighbourLab.local)
        truncated.removeLast(10)
        lab.deliver(truncated)
        var wrongHardware = arpFrame(.request, senderMAC: NeighbourLab.peerMAC, sender: NeighbourLab.peer, target: NeighbourLab.local)
        wrongHardware[15] = 6
        lab.deliver(wrongHardware)
        var badOperation = arpFrame(.request, senderMAC: NeighbourLab.peerMAC, sender: NeighbourLab.peer, target: NeighbourLab.local)
        badOperation[21] = 9
        lab.deliver(badOperation)
        lab.deliver(arpFrame(.request, senderMAC: NeighbourLab.peerMAC, sender: NeighbourLab.peer, target: ip("224.0.0.1")))
        lab.deliver(arpFrame(.request, senderMAC: MACAddress(1, 0, 0x5E, 0, 0, 1), sender: NeighbourLab.peer,
                             target: NeighbourLab.local))
        #expect(lab.worker.drops[.arpInvalid] == 5)
        #expect(lab.sent().isEmpty)
        #expect(lab.neighbours.snapshot().isEmpty)
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func aFullTableRefusesNewEntriesAfterCollectingFailedOnes() throws {
        var parameters = NeighbourParameters()
        parameters.maximumEntries = 2
        let lab = try NeighbourLab(parameters: parameters)
        let a = lab.neighbours.lookupOrCreate(ip("198.18.0.10"), device: lab.eth0)!
        lab.output([1], via: a)
        for _ in 0..<3 { lab.advance(seconds: 1) }   // a: FAILED
        #expect(lab.state(ip("198.18.0.10")) == .failed)
        _ = lab.neighbours.addStatic(ip("198.18.0.11"), linkAddress: mac(0x11), device: lab.eth0)
        // Full: the FAILED entry is collected to make room.
        #expect(lab.neighbours.lookupOrCreate(ip("198.18.0.12"), device: lab.eth0) != nil)
        #expect(lab.state(ip("198.18.0.10")) == nil)
        // Full of live entries: refused.
        lab.output([2], via: lab.neighbours.lookup(ip("198.18.0.12"), ifindex: lab.eth0.ifindex)!)
        #expect(lab.neighbours.lookupOrCreate(ip("198.18.0.13"), device: lab.eth0) == nil)
        #expect(lab.neighbours.statistics.tableFulls == 1)
        // A dead entry drops what is sent through it.
        lab.output([3], via: a)
        #expect(lab.worker.drops[.neighFailed] >= 2)
        for _ in 0..<3 { lab.advance(seconds: 1) }
        _ = lab.sent()
        #expect(lab.pool.inUseCount == 0)
    }
}
