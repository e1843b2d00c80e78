import DatapathCore
import DatapathWire

extension IPv4: IngressFastPath {
    /// The forwarding fast path (Linux: what an XDP forwarding program such as the kernel's
    /// `xdp_fwd` does at the driver's receive hook — `bpf_fib_lookup`, the TTL and MTU checks,
    /// `ip_decrease_ttl`, the MAC rewrite, `XDP_REDIRECT` — here with the stack's own counters).
    /// It runs the stages from `ip_rcv` to `neigh_hh_output` for a frame in one pass instead of
    /// one loop per stage, for frames that every stage would pass unchanged:
    ///
    /// - unicast to the receiving device, EtherType IPv4, a 20-byte header (no options) with a
    ///   good checksum and a total length within the frame (link-layer padding is trimmed, as
    ///   `ip_rcv` does);
    /// - a route (`ip_route_input`: a route cache hit, or on a miss the FIB, the result cached)
    ///   that forwards;
    /// - TTL above 1, not GSO, no checksum left to fill, not shared, within the route's MTU;
    /// - a neighbour in a connected state (its hh cache is valid).
    ///
    /// Such a frame gets its TTL decremented with the checksum patched (`ip_decrease_ttl`) and
    /// the neighbour's cached header written over its Ethernet header (`neigh_hh_output`); when
    /// the batch is done, each neighbour's frames go to `devQueueXmit` in order. A frame that
    /// passes the same checks and is routed to this host goes straight to local delivery
    /// (`fastLocalDeliver`, with `fastLocalDelivery` on; not a GSO super-frame), after the
    /// forwarded ones are sent. Every other frame stays in `batch`, in order and untouched but
    /// for the trim, for the staged path, which judges and counts it: errors, ICMP errors,
    /// fragmentation and neighbour resolution all happen there. Frames keep their order per flow: a flow's frames share a
    /// route, so a route that does not forward sends all of them to the staged path; a routed
    /// frame left for another reason (GSO, size, TTL) takes the rest of the batch for its
    /// neighbour with it, and an IPv4 frame to us left before routing (options, bad header) the
    /// rest of the batch. Frames of different flows to one neighbour can overtake each other,
    /// as they can across Linux's receive queues.
    ///
    /// It runs only when the stages it skips could not change a packet: no netfilter function
    /// on PRE_ROUTING or POST_ROUTING, none on FORWARD but the built-in filter table (whose
    /// FORWARD rules it applies itself: a frame a rule accepts stays on the fast path and is
    /// counted by the rule, one a rule drops or rejects takes the staged path, which does that),
    /// forwarding on (and, once IPsec lands, no forward policy: see `xfrmForwardPolicy`). With
    /// the route cache off every frame is routed anew. It counts what the stages would have —
    /// InReceives, ForwDatagrams, route cache lookups, filter rule matches — and its time is the
    /// `ip-forward-fast` stage's. It does not write header offsets, protocol or route into the
    /// skb: nothing after it reads them.
    public func receive(_ batch: inout PacketBatch, ifindex: Int, macWord: UInt64, worker: Worker) {
        let state = self.state(worker)
        state.refresh(self, worker: worker)
        let settings = unsafe state.settings
        guard settings.fastPath, settings.forwarding, batch.count <= PacketBatch.maximumCount,
              netfilter.isEmpty(.preRouting), netfilter.isEmpty(.postRouting) else { return }
        var filter: (table: FilterTable, rules: [FilterRule], matches: [FilterMatch])?
        if !netfilter.isEmpty(.forward) {
            guard let table = netfilter.soleFunction(on: .forward, worker: worker) as? FilterTable else { return }
            let hook = table.rules(.forward, worker: worker)
            guard hook.rules.count == hook.matches.count else { return }
            // A table whose last FORWARD rule was deleted stays registered, accepting all: no filter.
            if !hook.rules.isEmpty { filter = (table, hook.rules, hook.matches) }
        }
        let cache = state.routeCache
        let start = cycleCount()
        let slots = unsafe batch.slots
        let packets = batch.count
        // Two passes, each its own function so that neither runs short of registers: the checks
        // and the route lookup note each frame's neighbour; then the writes, and the frames
        // left alone closing up in order.
        unsafe fastClassify(slots, packets, ifindex: ifindex, macWord: macWord, state: state)
        if let filter {
            unsafe filter.matches.withUnsafeBufferPointer { matches in
                unsafe filter.rules.withUnsafeBufferPointer { rules in
                    unsafe fastFilter(slots, packets, ifindex: ifindex, matches: matches, rules: rules, state: state)
                }
            }
        }
        let groups = state.fastGroups
        var used = 0
        unsafe state.fastClosedAt = packets
        var kept: Int
        var local = unsafe state.fastLocal.view()
        if unsafe state.fastLocal.isEmpty {
            kept = unsafe fastRewrite(slots, packets, hops: state.fastHops, groups: groups, used: &used, worker: worker)
        } else if unsafe state.fastLocal.count == packets {
            // Every frame is ours (a server's batch): each hop is 0, so none would be rewritten
            // or close the batch, and `fastLocal` holds them all in batch order already.
            local = unsafe state.fastLocal.view(count: packets)
            unsafe state.fastLocal.removeAll()
            kept = 0
        } else {
            kept = unsafe fastRewrite(slots, packets, hops: state.fastHops, groups: groups, used: &used, worker: worker)
            kept = unsafe takeFastLocal(slots, kept, closedAt: state.fastClosedAt, into: &local, state: state)
        }
        if let filter { countFastMatches(packets, filter.table, filter.rules, state: state, worker: worker) }
        batch.count = kept
        let forwarded = packets &- kept &- local.count
        if forwarded > 0 {
            let counters = statistics.block(worker)
            counters.add(IPStatistics.Counter.inReceives.rawValue, UInt64(forwarded))
            counters.add(IPStatistics.Counter.forwDatagrams.rawValue, UInt64(forwarded))
            cache.countLookups(forwarded)
            if !cache.isEnabled { cache.countMisses(forwarded) }
            transmitFast(groups, used, worker: worker)
            worker.stages.record(fastForwardStage, packets: forwarded, cycles: cycleCount() &- start)
        }
        if !local.isEmpty { fastLocalDeliver(&local, state: state, worker: worker) }
        state.dsts.endBatch()
    }

    /// Takes the frames `fastLocal` noted out of those `fastRewrite` left in `slots` (the first
    /// `kept`, in order, among them every noted one), into `local`; returns how many are left.
    /// A noted frame after the place where an IPv4 frame to us closed the batch (`closedAt`:
    /// its flow is not known, so everything after it keeps its order on the staged path) stays.
    @inline(never)
    func takeFastLocal(_ slots: UnsafeMutablePointer<SKB>, _ kept: Int, closedAt: Int, into local: inout PacketBatch,
                       state: IPv4WorkerState) -> Int {
        let noted = unsafe state.fastLocal.slots
        let count = unsafe state.fastLocal.count
        unsafe state.fastLocal.removeAll()
        var next = 0
        var left = 0
        for i in 0..<kept {
            let skb = unsafe slots[i]
            if unsafe next < count && skb == noted[next] {
                next &+= 1
                if i < closedAt {
                    local.append(skb)
                    continue
                }
            }
            unsafe slots[left] = skb
            left &+= 1
        }
        return left
    }

    /// The frames the fast path found routed here (`fastLocalDelivery`): what `ip_rcv` and
    /// `ip_rcv_finish` would have done — the checks and the route lookup the fast path made, the
    /// route applied by `fastLocal`, `eth_type_trans`'s offsets, InReceives, the route cache
    /// lookups — then `ipLocalDeliver` and what the stack originated meanwhile (ICMP replies),
    /// as `ip_rcv_finish` ends. Its own time is the `ip-local-fast` stage's; local delivery's
    /// stages count as ever.
    @inline(never)
    func fastLocalDeliver(_ local: inout PacketBatch, state: IPv4WorkerState, worker: Worker) {
        let start = cycleCount()
        let packets = local.count
        for i in local.indices {
            let skb = local[i]
            skb.pullEthernetHeader(protocolType: EtherType.ipv4.rawValue, transportAfter: IPv4Header.minimumLength)
            skb.packetType = .host
        }
        statistics.block(worker).add(IPStatistics.Counter.inReceives.rawValue, UInt64(packets))
        state.routeCache.countLookups(packets)
        if !state.routeCache.isEnabled { state.routeCache.countMisses(packets) }
        worker.stages.record(fastLocalStage, packets: packets, cycles: cycleCount() &- start)
        unsafe state.routing = true
        ipLocalDeliver(&local, worker: worker)
        unsafe state.routing = false
        flushLocalOut(state, worker: worker)
    }

    /// A frame whose route has no neighbour: when the route delivers locally
    /// (`fastLocalDelivery`) and it is not a GSO super-frame, the fast path notes it for
    /// `takeFastLocal` (in its worker's `fastLocal`, in batch order) and writes the route into
    /// it as `ip_rcv_finish` would. Either way it returns 0: to `fastRewrite` the frame is one
    /// left for the staged path, so the forwarding loop has nothing more to look at.
    @inline(never)
    func fastLocal(_ skb: SKB, cached entry: UnsafeRawPointer, state: IPv4WorkerState) -> UInt {
        unsafe fastLocal(skb, entry.load(fromByteOffset: RouteCacheReader.resultOffset, as: RouteResult.self), state: state)
    }

    @inline(never)
    func fastLocal(_ skb: SKB, _ route: RouteResult, state: IPv4WorkerState) -> UInt {
        guard route.input == .localDeliver, unsafe state.settings.fastLocalDelivery, !skb.isGSO else { return 0 }
        route.apply(to: skb)
        unsafe state.fastLocal.append(skb)
        return 0
    }

    /// The first pass: `fastNeighbour` for each frame, into the worker's `fastHops`.
    @inline(never)
    func fastClassify(_ slots: UnsafeMutablePointer<SKB>, _ packets: Int, ifindex: Int, macWord: UInt64,
                      state: IPv4WorkerState) {
        let hops = unsafe state.fastHops
        let reader = state.routeCache.reader
        let current = unsafe state.cacheCurrent
        let snapshot = unsafe state.snapshot
        let iif = UInt64(truncatingIfNeeded: ifindex)
        for i in 0..<packets {
            unsafe hops[i] = unsafe fastNeighbour(slots[i], macWord: macWord, iif: iif, reader: reader, current: current, state: state,
                                    snapshot: snapshot)
        }
    }

    /// The FORWARD rules of the filter table for the frames the first pass would forward (as
    /// `FilterTable.hook` judges them after `ip_forward`): a frame matching an accept rule keeps
    /// its neighbour and notes the rule and its length in `fastRules`, to be counted if it is
    /// forwarded here; one matching a drop or reject rule is left to the staged path (0).
    @inline(never)
    func fastFilter(_ slots: UnsafeMutablePointer<SKB>, _ packets: Int, ifindex: Int,
                    matches: UnsafeBufferPointer<FilterMatch>, rules: UnsafeBufferPointer<FilterRule>,
                    state: IPv4WorkerState) {
        let hops = unsafe state.fastHops
        let noted = unsafe state.fastRules
        let iif = Int32(truncatingIfNeeded: ifindex)
        for i in 0..<packets {
            unsafe noted[i] = 0
            let hop = unsafe hops[i]
            guard hop != 0 && hop & 1 == 0 else { continue }
            guard let entry = neighbours.entry(NeighbourHandle(rawValue: UInt64(hop))) else {
                unsafe hops[i] = 0
                continue
            }
            let oif = Int32(truncatingIfNeeded: entry.ifindex)
            let ip = unsafe IPv4Header(unchecked: slots[i].data + EthernetHeader.length)
            let length = Int(ip.totalLength)
            let fields = unsafe FilterFields(ip: ip.base, length: length, inputIfindex: iif, outputIfindex: oif)
            guard let index = unsafe matches.firstIndex(where: { $0.matches(fields) }) else { continue }
            guard unsafe rules[index].spec.verdict == .accept else {
                unsafe hops[i] = 0
                continue
            }
            unsafe noted[i] = UInt64(index &+ 1) | UInt64(length) << 32
        }
    }

    /// Counts the accept rules' matches of the frames the fast path forwarded.
    func countFastMatches(_ packets: Int, _ table: FilterTable, _ rules: [FilterRule], state: IPv4WorkerState,
                          worker: Worker) {
        let hops = unsafe state.fastHops
        let noted = unsafe state.fastRules
        for i in 0..<packets where unsafe hops[i] != 0 && hops[i] & 1 == 0 && noted[i] != 0 {
            unsafe table.count(rules[Int(truncatingIfNeeded: noted[i] & 0xFFFF_FFFF) &- 1], bytes: Int(noted[i] >> 32),
                        worker: worker)
        }
    }

    /// The second pass: each frame with a neighbour gets its TTL decremented and the cached
    /// header, into the neighbour's output batch; the others close up at the front of `slots`
    /// in order. Returns how many stay there.
    @inline(never)
    func fastRewrite(_ slots: UnsafeMutablePointer<SKB>, _ packets: Int, hops: UnsafeMutablePointer<UInt>,
                     groups: NeighbourBatches, used: inout Int, worker: Worker) -> Int {
        var neighbour = UInt.max  // no hop's: the first frame, fast or not, takes the branch below
        var low: UInt64 = 0
        var high: UInt64 = 0
        var out = unsafe groups.batches
        var outSlots = unsafe out.pointee.slots
        var outCount = 0
        var kept = 0
        var closed = false
        for i in 0..<packets {
            let skb = unsafe slots[i]
            let next = unsafe hops[i]
            if next != neighbour {
                unsafe out.pointee.count = outCount
                guard !closed, next & 1 == 0, next != 0,
                      let output = unsafe fastOutput(to: next, groups: groups, used: &used, worker: worker) else {
                    // Later frames follow this one: for its neighbour (a flow's frames can differ
                    // in what made this one stay: GSO, size, TTL), or all of them (from here on
                    // none is delivered locally by the fast path either: `takeFastLocal`).
                    if next == 1 {
                        if !closed { unsafe state(worker).fastClosedAt = kept }
                        closed = true
                    } else if next & 1 != 0 && !closed {
                        closeFast(next & ~1, groups: groups, used: &used, worker: worker)
                    }
                    neighbour = UInt.max
                    unsafe hops[i] = 0  // not forwarded here (`countFastMatches`)
                    unsafe slots[kept] = skb
                    kept &+= 1
                    outCount = unsafe out.pointee.count
                    continue
                }
                neighbour = next
                unsafe (low, high, out) = unsafe output
                unsafe outSlots = unsafe out.pointee.slots
                outCount = unsafe out.pointee.count
            }
            let frame = unsafe skb.data
            let ip = unsafe IPv4Header(unchecked: frame + EthernetHeader.length)
            ip.decrementTTL(from: ip.ttl)
            unsafe frame.storeBytes(of: low, as: UInt64.self)
            unsafe frame.storeBytes(of: high, toByteOffset: 6, as: UInt64.self)
            unsafe outSlots[outCount] = skb
            outCount &+= 1
        }
        unsafe out.pointee.count = outCount
        return kept
    }

    /// The fast path's checks on one frame, reading only but for trimming padding, and on a
    /// route cache miss routing it (`fastRoute`); see `receive(_:ifindex:macWord:worker:)`. Returns the neighbour to
    /// send it to; that neighbour + 1 when the frame was routed but is left to the staged path
    /// (the rest of the batch for that neighbour then goes the same way); 1 for an IPv4 frame
    /// to us left before routing (options, a checksum only the device vouches for, a bad
    /// length: the rest of the batch goes the same way, since its flow is not known); 0 for any
    /// other frame left to the staged path (not IPv4, not to us, a route that does not forward:
    /// later frames of its flow, if any, are left too).
    ///
    /// It reads the frame as whole machine words rather than through the Wire views, on
    /// purpose — with the neighbour's prebuilt header words, the one place above Wire that does:
    /// the destination MAC, EtherType, version, header length and TOS are two compares, the
    /// header checksum three loads and two adds, and the route cache key two words as they lie
    /// in the header, where field-by-field reads would byte-swap and recombine each one.
    @inline(__always)
    func fastNeighbour(_ skb: SKB, macWord: UInt64, iif: UInt64, reader: RouteCacheReader, current: UInt64,
                       state: IPv4WorkerState, snapshot: FIBSnapshot) -> UInt {
        let head = unsafe skb.head
        let frame = unsafe head.pointee.data
        let length = unsafe head.pointee.length
        guard length >= 34 else { return 0 }
        // Destination MAC (the low six bytes of the first word), then EtherType, version/IHL
        // and TOS.
        let ethernet = unsafe frame.loadUnaligned(as: UInt64.self)
        guard ethernet << 16 == macWord << 16 else { return 0 }
        let word = unsafe frame.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
        guard word << 8 == 0x4500_0800 else { return word & 0xFFFF == 0x0008 ? 1 : 0 }
        let ip = unsafe frame + EthernetHeader.length
        let a = unsafe ip.loadUnaligned(as: UInt64.self)
        let b = unsafe ip.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let c = unsafe ip.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
        // The header's ten 16-bit words summed as two 64-bit words and one 32-bit word with
        // end-around carries: 2^16 ≡ 1 (mod 0xFFFF), so the sum is ≡ 0 exactly when the
        // ones' complement sum is 0xFFFF (it is never 0: the first byte is 0x45).
        let (s0, o0) = a.addingReportingOverflow(b)
        let (s1, o1) = s0.addingReportingOverflow(UInt64(c) &+ (o0 ? 1 : 0))
        guard (s1 &+ (o1 ? 1 : 0)) % 0xFFFF == 0 else { return 1 }
        // 20 ≤ total length ≤ frame length − 14, as one unsigned compare.
        let total = UInt32(UInt16(truncatingIfNeeded: a >> 16).byteSwapped)
        guard total &- 20 <= length &- 34 else { return 1 }
        // Link-layer padding goes, as `ip_rcv` would take it (whichever path the frame takes).
        if total &+ 14 != length { unsafe head.pointee.length = total &+ 14 }
        let k0 = unsafe UInt64(littleEndian: ip.loadUnaligned(fromByteOffset: 12, as: UInt64.self))
        let k1 = unsafe UInt64(head.pointee.mark) << 32 | UInt64(word >> 8 & 0x1E_0000) | iif
        let ttl = UInt8(truncatingIfNeeded: b)
        let set = unsafe reader.setBase(k0, k1)
        guard let entry = unsafe RouteCacheReader.find(k0, k1, in: set, current: current, changed: state.changed) else {
            return unsafe fastRoute(skb, k0: k0, k1: k1, set: set, total: total, ttl: ttl, state: state, snapshot: snapshot)
        }
        let neighbour = unsafe entry.load(fromByteOffset: RouteCacheReader.neighbourOffset, as: UInt64.self)
        if neighbour == 0 { return unsafe fastLocal(skb, cached: UnsafeRawPointer(entry), state: state) }
        return unsafe IPv4.fastVerdict(skb, neighbour: neighbour,
                                mtu: entry.load(fromByteOffset: RouteCacheReader.mtuOffset, as: UInt16.self),
                                total: total, ttl: ttl)
    }

    /// The checks after routing: the neighbour, or the neighbour tagged (+ 1) when the frame
    /// is routed but not for the fast path, or 0 when it is not forwarded (a result has a
    /// neighbour only when it forwards).
    @inline(__always)
    static func fastVerdict(_ skb: SKB, _ route: RouteResult, total: UInt32, ttl: UInt8) -> UInt {
        fastVerdict(skb, neighbour: route.neighbour, mtu: route.mtu, total: total, ttl: ttl)
    }

    @inline(__always)
    static func fastVerdict(_ skb: SKB, neighbour handle: UInt64, mtu: UInt16, total: UInt32, ttl: UInt8) -> UInt {
        let neighbour = UInt(truncatingIfNeeded: handle)
        guard neighbour != 0 else { return 0 }
        guard ttl > 1, !skb.hasOffloadWork, !skb.isShared, total <= UInt32(mtu) else {
            return neighbour | 1
        }
        return neighbour
    }

    /// A route cache miss in the fast path: routes the frame as `ip_rcv_finish` would
    /// (`routeInputSlow`, the result cached in the key's set, the miss counted; its lookup is
    /// counted by whichever path then takes the frame) and judges it (`fastVerdict`). So a
    /// flood of new destinations stays on the fast path as far as routing lets it.
    @inline(never)
    func fastRoute(_ skb: SKB, k0: UInt64, k1: UInt64, set: UnsafeMutableRawPointer, total: UInt32, ttl: UInt8,
                   state: IPv4WorkerState, snapshot: FIBSnapshot) -> UInt {
        let destination = UInt32(truncatingIfNeeded: k0 >> 32).byteSwapped
        let source = UInt32(truncatingIfNeeded: k0).byteSwapped
        let cache = state.routeCache
        // Counted now, since the staged path would find the entry made here (with the cache
        // off, where it would not, the fast path counts the frames it forwards instead).
        if cache.isEnabled { cache.countMisses() }
        let result = unsafe routeInputSlow(destination: destination, source: source, inputIfindex: Int(k1 & 0xFFFF),
                                    state: state, snapshot: snapshot, packet: skb.data + EthernetHeader.length)
        if result.input != .none && !result.flags.contains(.perFlow) {
            unsafe cache.insert(k0, k1, into: set, current: state.cacheCurrent, result)
        }
        if result.neighbour == 0 { return fastLocal(skb, result, state: state) }
        return IPv4.fastVerdict(skb, result, total: total, ttl: ttl)
    }

    /// The fast path meets a neighbour other than the last packet's: its cached header and its
    /// output batch; nil when the neighbour is not in a connected state (the packet takes the
    /// staged path, which resolves) or closed for the batch (`closeFast`).
    @inline(never)
    func fastOutput(to next: UInt, groups: NeighbourBatches, used: inout Int,
                    worker: Worker) -> (UInt64, UInt64, UnsafeMutablePointer<PacketBatch>)? {
        let neighbour = UInt64(next)
        guard let entry = neighbours.entry(NeighbourHandle(rawValue: neighbour)),
              entry.currentState.intersects(.connected) else { return nil }
        let header = entry.cachedHeader()
        let slot = fastSlot(neighbour, groups: groups, used: &used, worker: worker)
        guard unsafe !groups.closed[slot] else { return nil }
        return unsafe (header.low, header.high, groups.batches + slot)
    }

    /// Sends the rest of the batch's frames for `next` to the staged path.
    @inline(never)
    func closeFast(_ next: UInt, groups: NeighbourBatches, used: inout Int, worker: Worker) {
        let slot = fastSlot(UInt64(next), groups: groups, used: &used, worker: worker)
        unsafe groups.closed[slot] = true
    }

    /// The output slot of a neighbour: its own, or a new one (after sending all of them when
    /// eight are in use).
    func fastSlot(_ neighbour: UInt64, groups: NeighbourBatches, used: inout Int,
                  worker: Worker) -> Int {
        if let slot = (0..<used).first(where: { unsafe groups.neighbours[$0] == neighbour }) { return slot }
        if used == NeighbourBatches.count {
            transmitFast(groups, used, worker: worker)
            used = 0
        }
        unsafe groups.neighbours[used] = neighbour
        unsafe groups.closed[used] = false
        used &+= 1
        return used &- 1
    }

    /// Sends each neighbour's batch of the fast path, headers written (`devQueueXmit`).
    func transmitFast(_ groups: NeighbourBatches, _ used: Int, worker: Worker) {
        for slot in 0..<used {
            if let entry = unsafe neighbours.entry(NeighbourHandle(rawValue: groups.neighbours[slot])) {
                unsafe core.devQueueXmit(&groups.batches[slot], device: entry.device, worker: worker)
            } else {
                unsafe worker.drop(&groups.batches[slot], .neighFailed)
            }
            unsafe groups.batches[slot].removeAll()
        }
    }
}
