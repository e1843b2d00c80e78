import DatapathCore
import DatapathWire

extension IPv4 {
    /// Sends packets the stack originates, routed already (`RouteResult.apply`), `data` at a
    /// complete IPv4 header (Linux: `ip_local_out` → `__ip_local_out`: fills the header
    /// checksum, counts OutRequests, runs `NF_INET_LOCAL_OUT`, then `dst_output`).
    public func ipLocalOut(_ batch: inout PacketBatch, worker: Worker) {
        guard !batch.isEmpty else { return }
        for i in batch.indices { unsafe IPv4Header(unchecked: batch[i].data).fillChecksum() }
        statistics.block(worker).add(IPStatistics.Counter.outRequests.rawValue, UInt64(batch.count))
        netfilter.run(.localOut, &batch, worker: worker)
        dstOutput(&batch, worker: worker)
    }

    /// Hands each packet to its dst's output (Linux: `dst_output` → `skb_dst(skb)->output`):
    /// `ip_output` for a route; `ip_mc_output` (`ipMcLoop`, then `ip_output`) for a group or
    /// broadcast that comes back to this host; a dst with no way out drops (`.ipOutNoRoute`). The xfrm issue's
    /// transform outputs end by moving the packet to the bundle's `child` and come back here,
    /// the loop Linux's `dst_output` makes over a bundle. A batch of routes only — the usual
    /// case — costs one load per packet.
    public func dstOutput(_ batch: inout PacketBatch, worker: Worker) {
        guard !batch.isEmpty else { return }
        let dsts = state(worker).dsts
        var plain = true
        for i in batch.indices where dsts[batch[i].dst].output != .ipOutput {
            plain = false
            break
        }
        if !plain {
            var kept = 0
            for i in batch.indices {
                let skb = batch[i]
                switch dsts[skb.dst].output {
                case .ipOutput:
                    batch[kept] = skb
                    kept &+= 1
                case .mcOutput:
                    ipMcLoop(skb, worker: worker)
                    // TTL 0 (IP_MULTICAST_TTL 0): this host only.
                    if unsafe IPv4Header(unchecked: skb.data).ttl == 0 {
                        worker.cache.free(skb)
                    } else {
                        batch[kept] = skb
                        kept &+= 1
                    }
                case .discard:
                    worker.drop(skb, .ipOutNoRoute)
                }
            }
            batch.count = kept
        }
        ipOutput(&batch, worker: worker)
    }

    /// The local copy of a multicast or broadcast the stack sends (Linux: `ip_mc_output` →
    /// `NF_HOOK(POST_ROUTING)` → `ip_mc_finish_output` → `dev_loopback_xmit`): a private copy
    /// through POST_ROUTING, framed for the group's MAC, typed `.loopback` and handed to the
    /// loopback device, which gives it back to the receive path as received on the device the
    /// original left by — so members of the group there (or, for a broadcast, sockets bound
    /// to the port) get it, with that device in their packet info. Its checksums count as
    /// verified. A GSO packet is not looped. Drops: `.noMemory` (no buffer for the copy).
    func ipMcLoop(_ skb: SKB, worker: Worker) {
        guard !skb.isGSO, let lo = unsafe core.devices[loopbackIfindex] else { return }
        guard let copy = worker.cache.copy(skb) else {
            worker.drops.count(.noMemory)
            return
        }
        let ifindex = Int(state(worker).dsts[skb.dst].outputIfindex)
        withPacketBatch(capacity: 1) { loop in
            loop.append(copy)
            netfilter.run(.postRouting, &loop, worker: worker)
            guard !loop.isEmpty else { return }
            let destination = unsafe IPv4Header(unchecked: copy.data).destination
            guard let ethernet = unsafe copy.push(EthernetHeader.length) else {
                worker.drop(&loop, .noMemory)
                return
            }
            let mac = destination.isMulticast
                ? MACAddress(bits: 0x0100_5E00_0000 | UInt64(destination.hostOrder & 0x7F_FFFF)) : MACAddress.broadcast
            let header = unsafe EthernetHeader(unchecked: ethernet)
            header.destination = mac
            header.source = core.devices[ifindex]?.macAddress ?? .zero
            header.etherType = .ipv4
            copy.packetType = .loopback
            copy.inputIfindex = ifindex
            copy.checksumState = .unnecessary
            core.devQueueXmit(&loop, device: lo, worker: worker)
        }
    }

    /// Linux: `ip_output` → `NF_HOOK(POST_ROUTING)` → `ip_finish_output`.
    public func ipOutput(_ batch: inout PacketBatch, worker: Worker) {
        netfilter.run(.postRouting, &batch, worker: worker)
        ipFinishOutput(&batch, worker: worker)
    }

    /// Fragments what is longer than its route's MTU and hands on (Linux: `ip_finish_output`
    /// → `ip_fragment` / `ip_finish_output2`). A batch with nothing to fragment — the usual
    /// case — costs one length compare per packet.
    package func ipFinishOutput(_ batch: inout PacketBatch, worker: Worker) {
        guard !batch.isEmpty else { return }
        let dsts = state(worker).dsts
        var fits = true
        for i in batch.indices where batch[i].length > Int(dsts[batch[i].dst].mtu) {
            fits = false
            break
        }
        if fits {
            ipFinishOutput2(&batch, worker: worker)
            return
        }
        var out = state(worker).fragments.view()
        for i in batch.indices {
            let skb = batch[i]
            if skb.isGSO {
                ipFinishOutputGSO(skb, into: &out, worker: worker)
            } else if skb.length <= Int(dsts[skb.dst].mtu) {
                if out.isFull { ipFinishOutput2(&out, worker: worker) }
                out.append(skb)
            } else {
                ipFragment(skb, into: &out, worker: worker)
            }
        }
        batch.removeAll()
        ipFinishOutput2(&out, worker: worker)
    }

    /// A GSO packet (Linux: `ip_finish_output_gso`): whole when its segments fit the MTU (the
    /// device segments it, or `devQueueXmit` does for a device that cannot); else segmented
    /// here (`skbGSOSegment`) and each segment fragmented if it is still too long (no DF: a DF
    /// packet this large was refused by `ip_forward`). Drops: `.gsoSegmentation` when it
    /// cannot be segmented.
    func ipFinishOutputGSO(_ skb: SKB, into out: inout PacketBatch, worker: Worker) {
        let mtu = Int(state(worker).dsts[skb.dst].mtu)
        if skb.gsoSegmentsFit(mtu: mtu) {
            if out.isFull { ipFinishOutput2(&out, worker: worker) }
            out.append(skb)
            return
        }
        let state = self.state(worker)
        var segments = state.gsoSegments.view()
        guard skbGSOSegment(skb, networkOffset: 0, into: &segments, worker: worker) else {
            worker.drop(skb, .gsoSegmentation)
            return
        }
        for i in segments.indices {
            let segment = segments[i]
            if segment.length <= mtu {
                if out.isFull { ipFinishOutput2(&out, worker: worker) }
                out.append(segment)
            } else {
                ipFragment(segment, into: &out, worker: worker)
            }
        }
        segments.removeAll()  // every segment went on
    }

    /// Hands each packet to its next hop's neighbour (Linux: `ip_finish_output2` →
    /// `neigh_output`), a batch per neighbour: a batch with one next hop — the usual case —
    /// goes on whole; a mixed one is split, in order, over up to eight neighbours at a time.
    ///
    /// Reads: the neighbour routing chose (control word 0, a `NeighbourHandle`). Next:
    /// `NeighbourTable.output` (hh cache → `devQueueXmit`, or resolution). Drops:
    /// `.ipOutNoRoute` without a neighbour, `.neighFailed` for one that left the table since
    /// it was routed. Empties `batch`.
    package func ipFinishOutput2(_ batch: inout PacketBatch, worker: Worker) {
        guard !batch.isEmpty else { return }
        let start = cycleCount()
        let packets = batch.count
        let first = batch[0].dstNeighbour
        var single = true
        for i in 1..<batch.count where batch[i].dstNeighbour != first {
            single = false
            break
        }
        if single && first != 0 {
            if let neighbour = neighbours.entry(NeighbourHandle(rawValue: first)) {
                neighbours.output(&batch, via: neighbour, worker: worker)
            } else {
                worker.drop(&batch, .neighFailed)
            }
        } else {
            splitByNeighbour(&batch, worker: worker)
        }
        worker.stages.record(finishOutputStage, packets: packets, cycles: cycleCount() &- start)
    }

    func splitByNeighbour(_ batch: inout PacketBatch, worker: Worker) {
        let groups = state(worker).neighbourBatches
        var used = 0
        var last: UInt64 = 0
        var slot = 0
        for i in batch.indices {
            let skb = batch[i]
            let neighbour = skb.dstNeighbour
            guard neighbour != 0 else {
                worker.drop(skb, .ipOutNoRoute)
                continue
            }
            if neighbour != last {
                slot = (0..<used).first { unsafe groups.neighbours[$0] == neighbour } ?? -1
                if slot < 0 {
                    if used == NeighbourBatches.count {
                        flush(groups, used, worker: worker)
                        used = 0
                    }
                    slot = used
                    unsafe groups.neighbours[used] = neighbour
                    used &+= 1
                }
                last = neighbour
            }
            unsafe groups.batches[slot].append(skb)
        }
        batch.removeAll()
        flush(groups, used, worker: worker)
    }

    func flush(_ groups: NeighbourBatches, _ used: Int, worker: Worker) {
        for slot in 0..<used {
            if let neighbour = unsafe neighbours.entry(NeighbourHandle(rawValue: groups.neighbours[slot])) {
                unsafe neighbours.output(&groups.batches[slot], via: neighbour, worker: worker)
            } else {
                unsafe worker.drop(&groups.batches[slot], .neighFailed)
            }
            unsafe groups.batches[slot].removeAll()
        }
    }
}

extension IPv4 {
    /// Queues a routed packet the stack originated; it leaves through `ipLocalOut` when the
    /// current batch finishes (or now, when the queue is full).
    func queueLocalOut(_ skb: SKB, worker: Worker) {
        let state = self.state(worker)
        if state.output.isFull { flushLocalOut(state, worker: worker) }
        state.output.append(skb)
    }

    /// Sends what `queueLocalOut` gathered. The packets move to a batch on the stack first, so
    /// whatever sending them queues (an ICMP error about one of them) lands in the emptied
    /// queue, never in the slots being sent.
    func flushLocalOut(_ state: IPv4WorkerState, worker: Worker) {
        guard !state.output.isEmpty else { return }
        withPacketBatch(capacity: state.output.count) { sending in
            for i in state.output.indices { sending.append(state.output[i]) }
            state.output.removeAll()
            ipLocalOut(&sending, worker: worker)
        }
    }
}

/// One worker's per-neighbour output batches for `ipFinishOutput2` and the fast path.
@safe final class NeighbourBatches: @unchecked Sendable {
    static let count = 8
    /// Raw `NeighbourHandle`s, one per batch in use.
    let neighbours: UnsafeMutablePointer<UInt64>
    let batches: UnsafeMutablePointer<PacketBatch>
    /// The fast path's: the neighbour takes no more frames this batch (`IPv4.closeFast`).
    let closed: UnsafeMutablePointer<Bool>

    init() {
        unsafe neighbours = .allocate(capacity: NeighbourBatches.count)
        unsafe neighbours.initialize(repeating: 0, count: NeighbourBatches.count)
        unsafe closed = .allocate(capacity: NeighbourBatches.count)
        unsafe closed.initialize(repeating: false, count: NeighbourBatches.count)
        unsafe batches = .allocate(capacity: NeighbourBatches.count)
        for i in 0..<NeighbourBatches.count { unsafe (batches + i).initialize(to: PacketBatch()) }
    }

    deinit {
        unsafe batches.deinitialize(count: NeighbourBatches.count)
        unsafe batches.deallocate()
        unsafe neighbours.deallocate()
        unsafe closed.deallocate()
    }
}
