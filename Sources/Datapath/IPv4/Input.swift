import DatapathCore
import DatapathWire

extension IPv4 {
    /// Validates a batch of IPv4 packets from the link layer (Linux: `ip_rcv` → `ip_rcv_core`,
    /// with the options pass of `ip_rcv_options`). Martian addresses are routing's to refuse,
    /// as in Linux (`ip_route_input_slow`): on a route cache miss only, since a hit means the
    /// same source and destination passed before.
    ///
    /// Reads: the IPv4 header, `packetType`, `checksumState`. Writes: trims link-layer padding to
    /// the total length, sets the network and transport header offsets.
    /// Next: the survivors stay in `batch`, for `NF_INET_PRE_ROUTING` and `ip_rcv_finish`.
    /// Drops: `.otherHost` (not counted as received, as in Linux), `.packetTooSmall` (shorter
    /// than 20 bytes: InHdrErrors; shorter than its total length: InTruncatedPkts),
    /// `.ipHeaderInvalid` (version, IHL, total length below the header, malformed options:
    /// InHdrErrors; malformed options also get ICMP parameter problem pointing at the option),
    /// `.ipChecksum` (InCsumErrors and InHdrErrors), `.ipSourceRouted`.
    public func ipRcv(_ batch: inout PacketBatch, worker: Worker) {
        let start = cycleCount()
        let packets = batch.count
        let counters = statistics.block(worker)
        var kept = 0
        var received = 0
        let slots = unsafe batch.slots
        for i in 0..<packets {
            let skb = unsafe slots[i]
            if skb.packetType == .otherHost {
                worker.drop(skb, .otherHost)
                continue
            }
            received &+= 1
            if let reason = IPv4.validate(skb, counters: counters) {
                if reason == .ipHeaderInvalid { reportBadOptions(skb, worker: worker) }
                worker.drop(skb, reason)
                continue
            }
            unsafe slots[kept] = skb
            kept &+= 1
        }
        batch.count = kept
        counters.add(IPStatistics.Counter.inReceives.rawValue, UInt64(received))
        worker.stages.record(rcvStage, packets: packets, cycles: cycleCount() &- start)
    }

    /// One packet's checks, in Linux's order; nil when it passes (and is trimmed and marked).
    @inline(__always)
    static func validate(_ skb: SKB, counters: CounterBlock) -> DropReason? {
        let length = skb.length
        let base = unsafe skb.data
        // Nearly every packet: version 4, a 20-byte header, a good checksum, a total length
        // within the frame. Anything else is judged (and counted) by `validateSlowly`.
        let ip = unsafe IPv4Header(unchecked: base)
        if length >= IPv4Header.minimumLength && ip.isVersion4WithoutOptions {
            let total = Int(ip.totalLength)
            // The header checksum is always verified: a ring's "checksum valid" (TP_STATUS_CSUM_VALID,
            // CHECKSUM_UNNECESSARY) covers the transport checksum, not this one — Linux's
            // ip_rcv_core verifies it regardless. (The fuzzer found a forwarded packet keeping a
            // bad header checksum when the ring said "valid".)
            if ip.isChecksumValid && total >= 20 && total <= length {
                if total != length { skb.trim(to: total) }
                skb.resetNetworkHeader()
                skb.setTransportHeader(afterNetworkBytes: 20)
                return nil
            }
        }
        return validateSlowly(skb, counters: counters)
    }

    /// `validate` for everything but the common case: each check in Linux's order.
    @inline(never)
    static func validateSlowly(_ skb: SKB, counters: CounterBlock) -> DropReason? {
        let length = skb.length
        guard length >= 20 else {
            counters.add(IPStatistics.Counter.inHdrErrors.rawValue)
            return .packetTooSmall
        }
        let ip = unsafe IPv4Header(unchecked: skb.data)
        let headerLength = ip.headerLength
        guard ip.version == 4, headerLength >= 20, headerLength <= length else {
            counters.add(IPStatistics.Counter.inHdrErrors.rawValue)
            return .ipHeaderInvalid
        }
        if !ip.isChecksumValid {
            counters.add(IPStatistics.Counter.inCsumErrors.rawValue)
            counters.add(IPStatistics.Counter.inHdrErrors.rawValue)
            return .ipChecksum
        }
        let total = Int(ip.totalLength)
        guard total <= length else {
            counters.add(IPStatistics.Counter.inTruncatedPkts.rawValue)
            return .packetTooSmall
        }
        guard total >= headerLength else {
            counters.add(IPStatistics.Counter.inHdrErrors.rawValue)
            return .ipHeaderInvalid
        }
        if headerLength > 20, let reason = checkOptions(ip, headerLength: headerLength) {
            // Malformed options are header errors; a refused source route is not (Linux counts
            // it nowhere but the drop).
            if reason == .ipHeaderInvalid { counters.add(IPStatistics.Counter.inHdrErrors.rawValue) }
            return reason
        }
        // Link-layer padding goes (Linux: `pskb_trim_rcsum`).
        skb.trim(to: total)
        skb.resetNetworkHeader()
        skb.setTransportHeader(afterNetworkBytes: headerLength)
        return nil
    }
}
