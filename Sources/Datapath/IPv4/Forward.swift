import DatapathCore
import DatapathWire

extension IPv4 {
    /// Forwards a batch routed to `.forward` (Linux: `ip_forward`).
    ///
    /// Reads: TTL, DF and total length, `packetType`, the route's MTU. Writes: TTL − 1 with the
    /// header checksum patched incrementally (`ip_decrease_ttl`); a shared skb is copied first
    /// (`skb_cow`); a header with options records this router in them (`ipForwardOptions`;
    /// Linux does it in `ip_forward_finish`, after the FORWARD hook, which cannot match on
    /// options anyway).
    /// Next: `NF_INET_FORWARD` → `ipForwardFinish`. The IPsec points of Linux's path —
    /// `xfrm4_policy_check(FWD)` and `xfrm4_route_forward` — are `xfrmForwardPolicy` and
    /// `xfrmRouteForward` here, empty until IPsec lands.
    /// Drops: `.otherHost` (a frame not sent to our MAC), `.ipTTLExpired` (TTL ≤ 1: ICMP time
    /// exceeded, InHdrErrors), `.fragmentationNeeded` (longer than the path MTU with DF — for a
    /// GSO packet, segments longer than it (`ip_exceeds_mtu`) —: ICMP fragmentation needed with
    /// the MTU, FragFails), `.noMemory`.
    package func ipForward(_ batch: inout PacketBatch, worker: Worker) {
        let dsts = state(worker).dsts
        let start = cycleCount()
        let packets = batch.count
        let counters = statistics.block(worker)
        var kept = 0
        let slots = unsafe batch.slots
        for i in 0..<packets {
            let skb = unsafe slots[i]
            if skb.packetType != .host {
                worker.drop(skb, .otherHost)
                continue
            }
            if !xfrmForwardPolicy(skb) { continue }
            let ip = unsafe IPv4Header(unchecked: skb.data)
            let ttl = ip.ttl
            if ttl <= 1 {
                counters.add(IPStatistics.Counter.inHdrErrors.rawValue)
                icmp.sendError(for: skb, type: .timeExceeded, code: ICMPCode.TimeExceeded.ttl, worker: worker)
                worker.drop(skb, .ipTTLExpired)
                continue
            }
            let mtu = Int(dsts[skb.dst].mtu)
            if skb.length > mtu && ip.dontFragment
                && !(skb.isGSO && skb.gsoSegmentsFit(mtu: mtu)) {
                counters.add(IPStatistics.Counter.fragFails.rawValue)
                icmp.sendError(for: skb, type: .destinationUnreachable,
                               code: ICMPCode.DestinationUnreachable.fragmentationNeeded, info: UInt32(mtu),
                               worker: worker)
                worker.drop(skb, .fragmentationNeeded)
                continue
            }
            let hasOptions = ip.headerLength != IPv4Header.minimumLength
            guard let writable = worker.unshare(skb) else { continue }
            unsafe IPv4Header(unchecked: writable.data).decrementTTL(from: ttl)
            if hasOptions { ipForwardOptions(writable, worker: worker) }
            unsafe slots[kept] = writable
            kept &+= 1
        }
        batch.count = kept
        worker.stages.record(forwardStage, packets: packets, cycles: cycleCount() &- start)
        xfrmRouteForward(&batch, worker: worker)
        netfilter.run(.forward, &batch, worker: worker)
        ipForwardFinish(&batch, worker: worker)
    }

    /// IPsec extension point (Linux: `xfrm4_policy_check(NULL, XFRM_POLICY_FWD, skb)`): whether
    /// forwarding policy lets the packet pass; it consumes what it refuses. Passes everything
    /// until IPsec lands.
    @inline(__always)
    func xfrmForwardPolicy(_ skb: SKB) -> Bool { true }

    /// IPsec extension point (Linux: `xfrm4_route_forward` → `xfrm_lookup`): may replace a
    /// packet's route with the head of an xfrm bundle. Changes nothing until IPsec lands.
    @inline(__always)
    func xfrmRouteForward(_ batch: inout PacketBatch, worker: Worker) {}

    /// Linux: `ip_forward_finish` — counts ForwDatagrams and hands on to `dst_output`.
    package func ipForwardFinish(_ batch: inout PacketBatch, worker: Worker) {
        guard !batch.isEmpty else { return }
        statistics.block(worker).add(IPStatistics.Counter.forwDatagrams.rawValue, UInt64(batch.count))
        dstOutput(&batch, worker: worker)
    }
}
