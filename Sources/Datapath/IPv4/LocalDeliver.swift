import DatapathCore
import DatapathWire

extension IPv4 {
    /// Delivers a batch routed to `.localDeliver` (Linux: `ip_local_deliver`): fragments go to
    /// reassembly (`ip_defrag`) and come back whole or not at all, then `NF_INET_LOCAL_IN`,
    /// then `ipLocalDeliverFinish`.
    public func ipLocalDeliver(_ batch: inout PacketBatch, worker: Worker) {
        let start = cycleCount()
        let packets = batch.count
        ipDefragment(&batch, worker: worker)
        worker.stages.record(localDeliverStage, packets: packets, cycles: cycleCount() &- start)
        netfilter.run(.localIn, &batch, worker: worker)
        ipLocalDeliverFinish(&batch, worker: worker)
    }

    /// Hands each packet to its protocol's handler (Linux: `ip_local_deliver_finish` →
    /// `ip_protocol_deliver_rcu`), `data` moved to the transport header; counts InDelivers.
    /// Raw sockets of the packet's protocol get their copies first (`raw_local_deliver`).
    /// Drops: `.ipNoProtocol` for a protocol nobody registered and no raw socket took
    /// (InUnknownProtos, and ICMP protocol unreachable unless it came as a broadcast).
    package func ipLocalDeliverFinish(_ batch: inout PacketBatch, worker: Worker) {
        guard !batch.isEmpty else { return }
        let counters = statistics.block(worker)
        let batches = unsafe state(worker).protocolBatches
        let rawSockets = unsafe raw?.bindings.read(worker) ?? []
        var used: UInt32 = 0
        for i in batch.indices {
            let skb = batch[i]
            let ip = unsafe skb.data
            let rawTook = unsafe !rawSockets.isEmpty && raw!.input(skb, sockets: rawSockets, worker: worker)
            let slot = unsafe Int(protocolIndex[Int(IPv4Header(unchecked: ip).protocol.rawValue)])
            guard slot != 0 else {
                if rawTook {
                    counters.add(IPStatistics.Counter.inDelivers.rawValue)
                    worker.cache.free(skb)
                    continue
                }
                counters.add(IPStatistics.Counter.inUnknownProtos.rawValue)
                icmp.sendError(for: skb, type: .destinationUnreachable, code: ICMPCode.DestinationUnreachable.protocol,
                               worker: worker)
                worker.drop(skb, .ipNoProtocol)
                continue
            }
            _ = unsafe skb.pull(IPv4Header(unchecked: ip).headerLength)
            unsafe batches[slot &- 1].append(skb)
            used |= 1 &<< UInt32(truncatingIfNeeded: slot &- 1)
        }
        batch.removeAll()
        var slot = 0
        while used != 0 {
            if used & 1 != 0, unsafe !batches[slot].isEmpty {
                unsafe counters.add(IPStatistics.Counter.inDelivers.rawValue, UInt64(batches[slot].count))
                unsafe protocolHandlers[slot].receive(&batches[slot], worker: worker)
                unsafe batches[slot].removeAll()
            }
            used >>= 1
            slot &+= 1
        }
    }
}
