import DatapathCore
import DatapathWire

extension IPv4 {
    /// Routes a batch of validated packets from one device and runs each on to its `dst.input`
    /// (Linux: `ip_rcv_finish` → `ip_route_input_noref` → `dst_input`).
    ///
    /// Reads: destination, source and TOS of the IPv4 header, `mark`, `inputIfindex`.
    /// Writes: the routing decision (`RouteResult.apply`: `dst`, `outputIfindex`, control words).
    /// Next: `ipForward` for `.forward`, `ipLocalDeliver` for `.localDeliver`; then the packets
    /// the stack originated meanwhile (ICMP) through `ipLocalOut`.
    /// Drops: `.ipNoRoute` (no route: ICMP net unreachable, InNoRoutes; an unreachable route:
    /// host unreachable; a multicast group not joined: nothing), `.ipProhibited` (ICMP
    /// administratively prohibited), `.ipBlackhole`, `.ipInvalidSource` (a martian source, or
    /// one of our own addresses: InAddrErrors), `.ipInvalidDestination` (zero or loopback:
    /// InAddrErrors), `.neighCreateFailed`.
    package func ipRcvFinish(_ batch: inout PacketBatch, worker: Worker) {
        guard !batch.isEmpty else {
            // What ip_rcv answered (parameter problems) still goes out.
            finishBatch(state(worker), worker: worker)
            return
        }
        let start = cycleCount()
        let packets = batch.count
        let state = self.state(worker)
        state.refresh(self, worker: worker)
        let cache = state.routeCache
        let current = unsafe state.cacheCurrent
        let snapshot = unsafe state.snapshot
        let iif = UInt64(truncatingIfNeeded: batch[0].inputIfindex)
        var forward = state.forward.view()
        var local = state.local.view()
        precondition(packets <= forward.capacity && packets <= local.capacity, "a batch larger than a stage batch")
        cache.countLookups(batch.count)
        unsafe state.routing = true
        defer { unsafe state.routing = false }
        let slots = unsafe batch.slots
        var forwarded = 0
        for i in 0..<packets {
            let skb = unsafe slots[i]
            let ip = unsafe skb.data
            let header = unsafe IPv4Header(unchecked: ip)
            let destination = header.destination.hostOrder
            let source = header.source.hostOrder
            let tos = UInt64(header.typeOfService & 0x1E)
            let k0 = RouteCache.key0(destination: destination, source: source)
            let k1 = UInt64(skb.mark) << 32 | tos << 16 | iif
            let result: RouteResult
            if let hit = unsafe cache.lookup(k0, k1, current: current, changed: state.changed) {
                result = hit
            } else {
                result = unsafe routeInputSlow(destination: destination, source: source, inputIfindex: Int(iif),
                                        state: state, snapshot: snapshot, packet: ip)
                if result.input != .none && !result.flags.contains(.perFlow) { cache.insert(k0, k1, current: current, result) }
            }
            result.apply(to: skb)
            // Forwarding first: nearly every packet of a router. (Both batches have room for
            // the whole input batch.)
            if result.input == .forward {
                unsafe forward.slots[forwarded] = skb
                forwarded &+= 1
            } else if result.input == .localDeliver {
                local.append(skb)
            } else {
                routeError(skb, result.input, worker: worker)
            }
        }
        forward.count = forwarded
        batch.removeAll()
        worker.stages.record(routeStage, packets: packets, cycles: cycleCount() &- start)
        if !forward.isEmpty { ipForward(&forward, worker: worker) }
        if !local.isEmpty { ipLocalDeliver(&local, worker: worker) }
        finishBatch(state, worker: worker)
    }

    /// Sends what the stack originated during the batch. Every path that routes ends here.
    func finishBatch(_ state: IPv4WorkerState, worker: Worker) {
        flushLocalOut(state, worker: worker)
        state.dsts.endBatch()
    }

    /// What `dst.input` does for the error routes (Linux: `ip_error`, `dst_discard`).
    func routeError(_ skb: SKB, _ input: DstInput, worker: Worker) {
        let counters = statistics.block(worker)
        switch input {
        case .netUnreachable:
            counters.add(IPStatistics.Counter.inNoRoutes.rawValue)
            icmp.sendError(for: skb, type: .destinationUnreachable, code: ICMPCode.DestinationUnreachable.net,
                           worker: worker)
            worker.drop(skb, .ipNoRoute)
        case .hostUnreachable:
            icmp.sendError(for: skb, type: .destinationUnreachable, code: ICMPCode.DestinationUnreachable.host,
                           worker: worker)
            worker.drop(skb, .ipNoRoute)
        case .prohibited:
            icmp.sendError(for: skb, type: .destinationUnreachable,
                           code: ICMPCode.DestinationUnreachable.administrativelyProhibited, worker: worker)
            worker.drop(skb, .ipProhibited)
        case .blackhole:
            worker.drop(skb, .ipBlackhole)
        case .martianSource:
            worker.drop(skb, .ipInvalidSource)
        case .localSource:
            counters.add(IPStatistics.Counter.inAddrErrors.rawValue)
            worker.drop(skb, .ipInvalidSource)
        case .martianDestination:
            counters.add(IPStatistics.Counter.inAddrErrors.rawValue)
            worker.drop(skb, .ipInvalidDestination)
        case .multicast:
            worker.drop(skb, .ipNoRoute)
        case .none:
            worker.drop(skb, .neighCreateFailed)
        case .forward, .localDeliver:
            preconditionFailure("not an error route")
        }
    }

    /// A route cache miss (Linux: `ip_route_input_slow` → `fib_lookup`, `fib_validate_source`,
    /// `ip_mkroute_input`). A connected route's result names the destination's neighbour;
    /// `.none` means the neighbour table was full (nothing to cache). A multipath route's
    /// next hop is chosen by the flow's hash (`selectMultipath`); `packet` (the IPv4 header,
    /// when there is a packet) gives the ports for `fib_multipath_hash_policy` 1.
    /// The result is stamped with the route slot it came from and the snapshot's generation,
    /// so that a cache keeping it can tell when that slot changes.
    @inline(__always)
    func routeInputSlow(destination: UInt32, source: UInt32, inputIfindex: Int, state: IPv4WorkerState,
                        snapshot: FIBSnapshot, packet: UnsafeMutableRawPointer? = nil) -> RouteResult {
        var slot: UInt32 = 0
        var result = unsafe routeDecision(destination: destination, source: source, inputIfindex: inputIfindex, state: state,
                                   snapshot: snapshot, packet: packet, slot: &slot)
        result.slot = slot
        result.stamp = snapshot.stamp
        return result
    }

    @inline(__always)
    func routeDecision(destination: UInt32, source: UInt32, inputIfindex: Int, state: IPv4WorkerState,
                       snapshot: FIBSnapshot, packet: UnsafeMutableRawPointer?, slot: inout UInt32) -> RouteResult {
        // Addresses whose first octet is 0, 127 or 224–255 need a closer look; a table load
        // each rules the rest out.
        if unsafe state.specialOctets[Int(source >> 24)] | state.specialOctets[Int(destination >> 24)] != 0,
           let special = specialAddresses(destination: destination, source: source, inputIfindex: inputIfindex,
                                          state: state) {
            return special
        }
        let index = snapshot.lookupIndex(destination)
        slot = UInt32(truncatingIfNeeded: index)
        guard index != 0 else {
            // A decision from "no route" changes when a route comes: the cache must watch slot 0.
            state.routeCache.noteSlot(0)
            return unsafe RouteResult(input: state.settings.forwarding ? .netUnreachable : .hostUnreachable)
        }
        // fib_validate_source: a packet from one of our own addresses is a martian — unless it
        // came back on the loopback device, where that is the point.
        if inputIfindex != 0, unsafe inputIfindex != loopbackIfindex, state.isLocalAddress(source, in: snapshot) {
            return RouteResult(input: .localSource)
        }
        var entry = unsafe state.routeTable[index]
        if unsafe entry.input == .none || Int32(bitPattern: state.routeStamps[index] &- SharedWord.loadRelaxed(state.allocated + index)) < 0 {
            entry = remakeRouteEntry(index, snapshot: snapshot, state: state)
            if entry.input == .none { return entry }
        }
        guard entry.input == .forward else { return entry }
        if unsafe inputIfindex != 0 && !state.settings.forwarding { return RouteResult(input: .hostUnreachable) }
        if entry.flags.contains(.multipath) {
            entry = unsafe selectMultipath(index, snapshot.routes[index], destination: destination, source: source,
                                    packet: packet, state: state)
            guard entry.input == .forward else { return entry }
        }
        guard entry.flags.contains(.connected) else { return entry }
        return connectedDecision(entry, destination: destination)
    }

    /// A connected route's decision for one destination: the destination is the next hop, its
    /// own neighbour entry (made when new). Out of line, as the neighbour lookup's registers
    /// would otherwise spill on the gateway routes' miss path.
    @inline(never)
    func connectedDecision(_ entry: RouteResult, destination: UInt32) -> RouteResult {
        guard let device = core.devices[Int(entry.outputIfindex)],
              let neighbour = neighbours.lookupOrCreate(IPv4Address(hostOrder: destination), device: device) else {
            return RouteResult(input: .none)
        }
        return RouteResult(forwardTo: neighbour.handle, nexthop: destination,
                           outputIfindex: Int(entry.outputIfindex), mtu: Int(entry.mtu),
                           flags: entry.flags.intersection(.perFlow), dst: DstIndex(rawValue: entry.dst))
    }

    /// The per-route decision for slot `index`, made (again): the one made for the route the
    /// slot held before (it was reused since) gives up its dsts (readable until the batch ends).
    /// A slot in this worker's snapshot was not reused after the snapshot, and a more specific
    /// route taking part of the slot's range leaves the route — and its dst — as they were.
    /// Out of line: rare, and its registers would otherwise spill on the miss path.
    @inline(never)
    func remakeRouteEntry(_ index: Int, snapshot: FIBSnapshot, state: IPv4WorkerState) -> RouteResult {
        let old = unsafe state.routeTable[index]
        if old.input == .forward && !old.flags.contains(.multipath) {
            state.dsts.release(DstIndex(rawValue: old.dst))
        }
        unsafe state.routeTable[index] = RouteResult(input: .none)   // released once, whatever follows
        if let entries = state.multipathEntries.removeValue(forKey: index) {
            for hop in entries where hop.input == .forward { state.dsts.release(DstIndex(rawValue: hop.dst)) }
        }
        let entry = makeRouteEntry(snapshot.routes[index], slot: index, state: state)
        // Every cached decision from this slot goes through this entry: the route cache
        // watches the slots that have one (a superset of its entries' slots).
        state.routeCache.noteSlot(UInt32(truncatingIfNeeded: index))
        if entry.input == .none { return entry }
        unsafe state.routeTable[index] = entry
        unsafe state.routeStamps[index] = snapshot.stamp
        return entry
    }

    /// The decisions `routeDecision` makes before the FIB for addresses with a special first
    /// octet; nil when the addresses turn out ordinary.
    /// Martians (RFC 1812 §5.3.7): a multicast, limited-broadcast, zero or loopback source; a
    /// zero or loopback destination. Then the limited broadcast and multicast destinations.
    @inline(never)
    func specialAddresses(destination: UInt32, source: UInt32, inputIfindex: Int, state: IPv4WorkerState) -> RouteResult? {
        if inputIfindex != 0 {
            if source & 0xF000_0000 == 0xE000_0000 || source == 0xFFFF_FFFF || source == 0
                || source & 0xFF00_0000 == 0x7F00_0000 {
                return RouteResult(input: .martianSource)
            }
            if destination == 0 || destination & 0xFF00_0000 == 0x7F00_0000 {
                return RouteResult(input: .martianDestination)
            }
        }
        if destination == 0xFFFF_FFFF { return RouteResult(input: .localDeliver, flags: .broadcast) }
        if destination & 0xF000_0000 == 0xE000_0000 {
            // ip_check_mc_rcu: a group joined on the input device, all-hosts, or IGMPv3's
            // report address (the queries and reports IGMP itself needs).
            let joined = destination == IGMP.allHosts || destination == IGMP.allReports
                || state.multicastGroups.contains(UInt64(inputIfindex) << 32 | UInt64(destination))
            return inputIfindex != 0 && joined ? RouteResult(input: .localDeliver, flags: .multicast)
                : RouteResult(input: .multicast)
        }
        return nil
    }

    /// Picks a multipath route's next hop for a flow (Linux: `fib_select_multipath` with
    /// `fib_multipath_hash`): the hash of the source and destination addresses — with
    /// `fib_multipath_hash_policy` 1 also the protocol and ports of a TCP or UDP packet that is
    /// not a fragment — split over the next hops whose device is up in proportion to their
    /// weights (hash-threshold, RFC 2992: a change of next hops moves as few flows as it can).
    /// Each next hop's decision is made once per FIB epoch, as a plain route's is. A choice
    /// that used the ports is marked `.perFlow`: the route cache, keyed by addresses, does not
    /// keep it. No next hop up: net unreachable.
    func selectMultipath(_ index: Int, _ route: Route, destination: UInt32, source: UInt32,
                         packet: UnsafeMutableRawPointer?, state: IPv4WorkerState) -> RouteResult {
        var entries = state.multipathEntries[index] ?? []
        if entries.isEmpty {
            entries = route.nexthops.map { hop in
                makeRouteEntry(Route(prefix: route.prefix, gateway: hop.gateway, ifindex: hop.ifindex,
                                     metric: route.metric, mtu: route.mtu), slot: index, state: state)
            }
            state.multipathEntries[index] = entries
        }
        var ports: UInt32 = 0
        var number: UInt8 = 0
        if unsafe state.settings.multipathHashPolicy == 1, let ip = unsafe packet {
            let header = unsafe IPv4Header(unchecked: ip)
            number = header.protocol.rawValue
            if (number == 6 || number == 17) && !header.isFragment && Int(header.totalLength) >= header.headerLength + 4 {
                // The port word as the header holds it, loaded as a host word.
                let transport = unsafe UDPHeader(unchecked: header.payload)
                ports = (UInt32(transport.sourcePort) << 16 | UInt32(transport.destinationPort)).bigEndian
            } else {
                number = 0
            }
        }
        // The addresses, and for policy 1 the protocol and ports, mixed with a per-stack key
        // (Linux: jhash with a boot-time seed), so a sender cannot aim its flows at one hop.
        let hash = multipathHasher.mix(UInt64(source) << 32 | UInt64(destination)
                                       ^ (UInt64(ports) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(number) << 56))
        var total = 0
        for (i, hop) in route.nexthops.enumerated() where entries[i].input == .forward { total += hop.weight }
        guard total > 0 else { return RouteResult(input: .netUnreachable) }
        // The hash's place in [0, total): the next hop whose share of the weights holds it.
        var point = Int((UInt64(hash) &* UInt64(total)) >> 32)
        for (i, hop) in route.nexthops.enumerated() where entries[i].input == .forward {
            if point < hop.weight {
                var chosen = entries[i]
                if number != 0 { chosen = chosen.adding(.perFlow) }
                return chosen
            }
            point -= hop.weight
        }
        return RouteResult(input: .netUnreachable)
    }

    /// What a route decides for every destination it covers (Linux: `fib_info` → the dst of
    /// `rt_dst_alloc`, cached on the next hop): the input action of its type; for unicast a
    /// new dst entry with the output device and MTU and, behind a gateway, the gateway's
    /// neighbour. A route through a device that is down is no route.
    func makeRouteEntry(_ route: Route, slot: Int, state: IPv4WorkerState) -> RouteResult {
        // A multipath route decides per flow (`selectMultipath`).
        if !route.nexthops.isEmpty && route.type == .unicast { return RouteResult(input: .forward, flags: .multipath) }
        switch route.type {
        case .local: return RouteResult(input: .localDeliver, flags: .local)
        case .broadcast: return RouteResult(input: .localDeliver, flags: .broadcast)
        case .blackhole: return RouteResult(input: .blackhole)
        case .unreachable: return RouteResult(input: .hostUnreachable)
        case .prohibit: return RouteResult(input: .prohibited)
        case .unicast: break
        }
        guard let device = core.devices[route.ifindex], core.isAdminUp(ifindex: route.ifindex) else {
            return RouteResult(input: .netUnreachable)
        }
        let mtu = route.mtu != 0 ? route.mtu : core.mtu(ifindex: route.ifindex)
        guard let gateway = route.gateway else {
            var made = unsafe DstEntry(forwardingTo: route.ifindex, gateway: 0, neighbour: nil, mtu: mtu, epoch: state.epoch)
            made.route = UInt32(truncatingIfNeeded: slot)
            made.stamp = unsafe state.snapshot.stamp
            let dst = state.dsts.make(made)
            return RouteResult(forwardTo: nil, nexthop: 0, outputIfindex: route.ifindex, mtu: mtu,
                               flags: .connected, dst: dst)
        }
        guard let neighbour = neighbours.lookupOrCreate(gateway, device: device) else { return RouteResult(input: .none) }
        var made = unsafe DstEntry(forwardingTo: route.ifindex, gateway: gateway.hostOrder, neighbour: neighbour.handle, mtu: mtu,
                            epoch: state.epoch)
        made.route = UInt32(truncatingIfNeeded: slot)
        made.stamp = unsafe state.snapshot.stamp
        let dst = state.dsts.make(made)
        return RouteResult(forwardTo: neighbour.handle, nexthop: gateway.hostOrder,
                           outputIfindex: route.ifindex, mtu: mtu, flags: [], dst: dst)
    }

    /// The route for a packet the stack originates to `destination` (Linux:
    /// `ip_route_output_key` → `ip_route_output_key_hash_rcu`), through the worker's route
    /// cache with input device 0. `.forward` means "send to the neighbour"; anything else has
    /// no way out (a destination of our own: no loopback device yet). A path-MTU exception for
    /// the destination gives the result a dst of its own with the lower MTU (Linux:
    /// `rt_bind_exception`), valid until the batch ends. Its `dst` is valid until the end of
    /// the batch; a holder that keeps the route takes a handle (`holdRoute`).
    /// `multicastLoop` is the sending socket's `IP_MULTICAST_LOOP` (`sk_mc_loop`).
    public func routeOutput(to destination: IPv4Address, tos: UInt8, mark: UInt32, worker: Worker,
                            outputIfindex: Int = 0, multicastLoop: Bool = false) -> RouteResult {
        let state = self.state(worker)
        if unsafe !state.routing { state.refresh(self, worker: worker) }
        if destination.isMulticast || destination.isBroadcast {
            return linkLayerGroupRoute(to: destination, outputIfindex: outputIfindex, loop: multicastLoop,
                                       state: state)
        }
        let k0 = RouteCache.key0(destination: destination.hostOrder, source: 0)
        let k1 = UInt64(mark) << 32 | UInt64(tos & 0x1E) << 16
        state.routeCache.countLookups(1)
        var result: RouteResult
        if let hit = unsafe state.routeCache.lookup(k0, k1, current: state.cacheCurrent, changed: state.changed) {
            result = hit
        } else {
            result = unsafe routeInputSlow(destination: destination.hostOrder, source: 0, inputIfindex: 0, state: state,
                                    snapshot: state.snapshot)
            if result.input != .none { unsafe state.routeCache.insert(k0, k1, current: state.cacheCurrent, result) }
        }
        if result.input == .localDeliver && result.flags.contains(.local) {
            return loopbackRoute(to: destination, state: state)
        }
        if result.input == .localDeliver && result.flags.contains(.broadcast),
           let route = unsafe state.snapshot.lookup(destination), route.type == .broadcast {
            // A subnet's broadcast address: out of that subnet's device.
            return linkLayerGroupRoute(to: destination, outputIfindex: route.ifindex, loop: false, state: state)
        }
        if result.input == .forward && !pmtuExceptions.isEmpty,
           let mtu = pmtuExceptions.mtu(for: destination, now: worker.clock.now()), mtu < Int(result.mtu) {
            var entry = state.dsts[result.dst]
            entry.mtu = UInt16(clamping: mtu)
            let own = state.dsts.make(entry)
            state.dsts.release(own)  // the batch's: readable until it ends
            result = result.with(mtu: mtu, dst: own)
        }
        return result
    }

    /// The route out for a multicast or broadcast destination (Linux: `ip_route_output_key`'s
    /// multicast and broadcast cases, `__mkroute_output` with `RTCF_MULTICAST`/`RTCF_BROADCAST`
    /// and `arp_mc_map`): out of `outputIfindex` (`IP_MULTICAST_IF`, a bound device), else
    /// the device the FIB gives the destination (a 224.0.0.0/4 or default route); the next hop
    /// is a NOARP neighbour with the mapped link address — 01:00:5e and the group's low 23
    /// bits, or ff:ff:ff:ff:ff:ff. The dst is the batch's (not cached). No device: net
    /// unreachable.
    ///
    /// Its output is `ip_mc_output` (a copy back to this host) for the limited broadcast, and
    /// for a group joined on the device when `loop` (`IP_MULTICAST_LOOP`): Linux's `RTCF_LOCAL`
    /// from `ip_check_mc_rcu`. A subnet's broadcast is not looped: its copy would come back
    /// from one of our own addresses, which route input refuses (Linux skips route input for
    /// it, the copy keeping its output dst).
    func linkLayerGroupRoute(to destination: IPv4Address, outputIfindex: Int, loop: Bool,
                             state: IPv4WorkerState) -> RouteResult {
        let ifindex = unsafe outputIfindex != 0 ? outputIfindex : state.snapshot.lookup(destination).map { $0.ifindex } ?? 0
        guard ifindex != 0, let device = core.devices[ifindex], core.isAdminUp(ifindex: ifindex) else {
            return RouteResult(input: .netUnreachable)
        }
        let multicast = destination.isMulticast
        let mac = multicast ? MACAddress(bits: 0x0100_5E00_0000 | UInt64(destination.hostOrder & 0x7F_FFFF))
            : MACAddress(bits: 0xFFFF_FFFF_FFFF)
        guard let neighbour = neighbours.addNoARP(destination, linkAddress: mac, device: device) else {
            return RouteResult(input: .none)
        }
        let mtu = core.mtu(ifindex: ifindex)
        var entry = unsafe DstEntry(forwardingTo: ifindex, gateway: 0, neighbour: neighbour.handle, mtu: mtu,
                             epoch: state.epoch)
        if unsafe loopbackIfindex != 0 && (destination.isBroadcast
            || (loop && state.multicastGroups.contains(UInt64(ifindex) << 32 | UInt64(destination.hostOrder)))) {
            entry.output = .mcOutput
        }
        let dst = state.dsts.make(entry)
        state.dsts.release(dst)   // the batch's: readable until it ends
        return RouteResult(forwardTo: neighbour.handle, nexthop: destination.hostOrder, outputIfindex: ifindex,
                           mtu: mtu, flags: multicast ? .multicast : .broadcast, dst: dst)
    }

    /// The route out to one of our own addresses (Linux: `ip_route_output_key` → `RTN_LOCAL`
    /// with `dev_out` the loopback device): out of lo, whose frames come back to `ip_rcv`, to
    /// a NOARP neighbour with the zero MAC. The dst is the batch's. No lo: no route.
    func loopbackRoute(to destination: IPv4Address, state: IPv4WorkerState) -> RouteResult {
        guard unsafe loopbackIfindex != 0, let device = unsafe core.devices[loopbackIfindex],
              let neighbour = neighbours.addNoARP(destination, linkAddress: .zero, device: device) else {
            return RouteResult(input: .hostUnreachable)
        }
        let mtu = unsafe core.mtu(ifindex: loopbackIfindex)
        let dst = unsafe state.dsts.make(DstEntry(forwardingTo: loopbackIfindex, gateway: 0, neighbour: neighbour.handle, mtu: mtu,
                                           epoch: state.epoch))
        state.dsts.release(dst)
        return unsafe RouteResult(forwardTo: neighbour.handle, nexthop: destination.hostOrder, outputIfindex: loopbackIfindex,
                           mtu: mtu, flags: .local, dst: dst)
    }

    /// The source address for a packet the stack sends to `destination` by `route` (Linux:
    /// `inet_select_addr` on the output device, or — to one of our own addresses, out of lo —
    /// the destination itself, as `ip_route_output_key` sets `fl4->saddr`). 0.0.0.0 when the
    /// device has none.
    func selectSource(for destination: IPv4Address, route: RouteResult, worker: Worker) -> IPv4Address {
        if route.flags.contains(.local) { return destination }
        return addresses.sourceAddress(for: destination, ifindex: Int(route.outputIfindex), worker: worker)
    }

    /// Keeps `route`'s dst beyond the batch (a connected socket's route; Linux: `dst_hold` on
    /// the socket's `sk_dst_cache`): a handle to revalidate with `checkRoute`. A route with a
    /// dst of its own for the batch only (an exception's) gives a handle that fails its check.
    func holdRoute(_ route: RouteResult, worker: Worker) -> DstHandle {
        state(worker).dsts.handle(DstIndex(rawValue: route.dst), stamp: route.stamp)
    }

    /// Whether a kept route is still current (Linux: `__sk_dst_check` → `ipv4_dst_check`):
    /// its dst still the same entry and made in the FIB epoch in force. Two compares; when it
    /// fails the holder routes again.
    func checkRoute(_ handle: DstHandle, worker: Worker) -> Bool {
        let state = self.state(worker)
        if unsafe !state.routing { state.refresh(self, worker: worker) }
        guard let index = unsafe state.dsts.check(handle, epoch: state.epoch) else { return false }
        // The route also goes stale when its slot's decisions changed after it was decided (a
        // more specific route took destinations, the route was replaced or removed).
        guard index.rawValue > UInt32(DstTable.staticCount) else { return true }
        let entry = state.dsts[index.rawValue]
        return unsafe RouteSlots.isCurrent(changed: state.changed, slot: entry.route, stamp: handle.stamp)
    }
}
