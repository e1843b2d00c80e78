import DatapathCore
import DatapathWire

extension IPv4 {
    /// Splits a packet longer than its route's MTU into fragments and appends them to `out`,
    /// flushing `out` to `ipFinishOutput2` when it fills (Linux: `ip_fragment` →
    /// `ip_do_fragment`, its slow path: each fragment is a new skb).
    ///
    /// Fragments carry 8-byte-aligned payload offsets relative to the original's own offset,
    /// MF on all but the last (and on the last too when the original had it), the header
    /// length of the original; a transport checksum left partial by the sender is completed
    /// first (`skb_checksum_help`); the first keeps every option, later ones only those with the
    /// copied flag — the others become NOOPs, as `ip_options_fragment` does (RFC 791).
    /// Counts FragOKs per packet and FragCreates per fragment; a packet with DF, an MTU
    /// below header + 8, or a failed allocation counts FragFails and is dropped
    /// (`.fragmentationNeeded`, `.noMemory`). Consumes `skb`.
    func ipFragment(_ skb: SKB, into out: inout PacketBatch, worker: Worker) {
        let counters = statistics.block(worker)
        let ip = unsafe skb.data
        let headerLength = unsafe IPv4Header(unchecked: ip).headerLength
        let flags = unsafe IPv4Header(unchecked: ip).flagsAndFragmentOffset
        let room = (Int(state(worker).dsts[skb.dst].mtu) - headerLength) & ~7
        guard flags & 0x4000 == 0, room >= 8 else {
            counters.add(IPStatistics.Counter.fragFails.rawValue)
            worker.drop(skb, .fragmentationNeeded)
            return
        }
        // A checksum the sender left to the device cannot be finished once split.
        if skb.checksumState == .partial { _ = skbChecksumHelp(skb, ipOffset: 0) }
        let payload = skb.length - headerLength
        let baseOffset = Int(flags & 0x1FFF) &* 8
        let keepsMore = flags & 0x2000 != 0
        var position = 0
        var made: UInt64 = 0
        while position < payload {
            let length = min(room, payload - position)
            let isLast = position + length == payload
            guard let fragment = worker.cache.allocate() else {
                counters.add(IPStatistics.Counter.fragFails.rawValue)
                worker.drop(skb, .noMemory)
                return
            }
            guard let data = unsafe fragment.put(headerLength + length) else {
                worker.cache.free(fragment)
                counters.add(IPStatistics.Counter.fragFails.rawValue)
                worker.drop(skb, .noMemory)
                return
            }
            unsafe data.copyMemory(from: ip, byteCount: headerLength)
            unsafe (data + headerLength).copyMemory(from: ip + headerLength + position, byteCount: length)
            let offsetField = UInt16((baseOffset + position) >> 3) | (isLast && !keepsMore ? 0 : 0x2000)
            let header = unsafe IPv4Header(unchecked: data)
            header.totalLength = UInt16(headerLength + length)
            header.flagsAndFragmentOffset = offsetField
            unsafe IPv4Header(unchecked: data).fillChecksum()
            IPv4.copyRouting(from: skb, to: fragment)
            if out.isFull { ipFinishOutput2(&out, worker: worker) }
            out.append(fragment)
            if position == 0 && headerLength > 20 { unsafe IPv4.keepOnlyCopiedOptions(ip, headerLength: headerLength) }
            made &+= 1
            position &+= length
        }
        counters.add(IPStatistics.Counter.fragOKs.rawValue)
        counters.add(IPStatistics.Counter.fragCreates.rawValue, made)
        worker.cache.free(skb)
    }

    /// A new skb made from `source` (a fragment, a reply) takes its routing and metadata.
    static func copyRouting(from source: SKB, to target: SKB) {
        target.dst = source.dst
        target.outputIfindex = source.outputIfindex
        target.control0 = source.control0
        target.control1 = source.control1
        target.mark = source.mark
        target.hash = source.hash
        target.inputIfindex = source.inputIfindex
        target.protocolType = source.protocolType
        target.packetType = source.packetType
        target.resetNetworkHeader()
        unsafe target.setTransportHeader(afterNetworkBytes: IPv4Header(unchecked: target.data).headerLength)
    }

    /// Replaces every option without the copied flag by NOOPs (Linux: `ip_options_fragment`).
    static func keepOnlyCopiedOptions(_ ip: UnsafeMutableRawPointer, headerLength: Int) {
        for case .option(let type, let offset, _, let valueLength) in unsafe IPv4OptionIterator(header: ip, end: headerLength)
        where !type.isCopied {
            unsafe (ip + offset).initializeMemory(as: UInt8.self, repeating: 1, count: valueLength + 2)
        }
    }
}
