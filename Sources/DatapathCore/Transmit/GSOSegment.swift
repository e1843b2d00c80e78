import DatapathWire

/// Splits a GSO packet into wire-sized packets in software (Linux: `skb_gso_segment` →
/// `inet_gso_segment` → `tcp4_gso_segment`, or `__udp_gso_segment` for UDP segmentation), for
/// a path that cannot hand it on whole: segments larger than the MTU without DF
/// (`ip_finish_output_gso`), or a device without segmentation offload.
///
/// The IPv4 header starts `networkOffset` bytes after `data` (0 on the IP layer, 14 on an
/// Ethernet device). Each segment is a private pool skb with the packet's metadata (devices,
/// route, mark, hash, packet type) and these headers: IPv4 total length, identification + 1 per
/// segment, header checksum; TCP sequence number advanced by the segment size, CWR only on the
/// first segment and FIN and PSH only on the last; UDP length; TCP and UDP checksums complete.
/// Segments are appended to `segments` in order. Returns false, appending and consuming
/// nothing, when the packet cannot be segmented: not IPv4 TCP (`.tcpv4`) or UDP (`.udpL4`)
/// with whole headers, more segments than `segments` has room for, a segment larger than a
/// pool buffer, or an empty pool.
public func skbGSOSegment(_ skb: SKB, networkOffset: Int, into segments: inout PacketBatch, worker: Worker) -> Bool {
    let base = skb.data
    let length = skb.length
    guard networkOffset >= 0, length >= networkOffset &+ 20,
          let ip = IPv4Header(base + networkOffset, length: length &- networkOffset),
          !ip.isFragment else { return false }
    let end = networkOffset &+ Int(ip.totalLength)
    guard end <= length else { return false }
    let transport = networkOffset &+ ip.headerLength
    let headers: Int
    switch (skb.gsoType.base, ip.protocol) {
    case (.tcpv4, .tcp):
        guard transport &+ 20 <= end else { return false }
        headers = transport &+ TCPHeader(unchecked: base + transport).dataOffset
        guard headers >= transport &+ 20 else { return false }
    case (.udpL4, .udp):
        headers = transport &+ 8
    default:
        return false
    }
    let mss = skb.gsoSize
    let payload = end &- headers
    guard mss > 0, payload > 0, headers <= end else { return false }
    let count = (payload &+ mss &- 1) / mss
    guard count <= segments.capacity &- segments.count else { return false }
    let first = segments.count
    let source = ip.source, destination = ip.destination
    let identification = ip.identification
    let sequence = skb.gsoType.base == .tcpv4 ? TCPHeader(unchecked: base + transport).sequenceNumber : 0
    for k in 0..<count {
        let chunk = min(mss, payload &- k &* mss)
        let segment = worker.cache.allocate(copyingMetadataOf: skb)
        guard let segment, let bytes = segment.put(headers &+ chunk) else {
            if let segment { worker.cache.free(segment) }  // allocated, but the segment does not fit it
            for i in first..<segments.count { worker.cache.free(segments[i]) }
            segments.count = first
            return false
        }
        bytes.copyMemory(from: base, byteCount: headers)
        (bytes + headers).copyMemory(from: base + (headers &+ k &* mss), byteCount: chunk)
        let header = IPv4Header(unchecked: bytes + networkOffset)
        header.totalLength = UInt16(truncatingIfNeeded: headers &- networkOffset &+ chunk)
        header.identification = identification &+ UInt16(truncatingIfNeeded: k)
        header.fillChecksum()
        let segmentLength = headers &- transport &+ chunk
        if skb.gsoType.base == .tcpv4 {
            let tcp = TCPHeader(unchecked: bytes + transport)
            tcp.sequenceNumber = sequence &+ UInt32(truncatingIfNeeded: k &* mss)
            var flags = tcp.flags
            if k > 0 { flags.remove(.cwr) }
            if k < count &- 1 { flags.remove(.fin); flags.remove(.psh) }
            tcp.flags = flags
            tcp.fillChecksum(source: source, destination: destination, segmentLength: segmentLength)
        } else {
            let udp = UDPHeader(unchecked: bytes + transport)
            udp.length = UInt16(truncatingIfNeeded: segmentLength)
            udp.fillChecksum(source: source, destination: destination)
        }
        let start = UInt16(truncatingIfNeeded: segment.headroom)
        segment.head.pointee.macOffset = start
        segment.head.pointee.networkOffset = start &+ UInt16(truncatingIfNeeded: networkOffset)
        segment.head.pointee.transportOffset = start &+ UInt16(truncatingIfNeeded: transport)
        segments.slots[segments.count] = segment
        segments.count &+= 1
    }
    worker.cache.free(skb)
    return true
}
