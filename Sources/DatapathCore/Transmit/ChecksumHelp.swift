import DatapathWire

/// Completes a transport checksum that the sender left for the device to fill (Linux:
/// `skb_checksum_help`), for a frame about to leave through a device that does not offload
/// checksums. The Linux kernel hands such frames to AF_PACKET when they come from its own
/// stack over veth (`TP_STATUS_CSUMNOTREADY`, i.e. `CHECKSUM_PARTIAL`): the checksum field
/// holds only the pseudo-header sum, and the rest is the device's job — now ours.
///
/// Reads: the frame from `data` (Ethernet, optional VLAN tags, IPv4, TCP or UDP).
/// Writes: the TCP/UDP checksum; `checksumState` becomes `.none`.
/// Returns false, changing nothing, for frames it cannot complete (not IPv4 TCP/UDP, a
/// fragment, or lengths that do not fit the buffer): the caller sends those as they are.
public func skbChecksumHelp(_ skb: SKB) -> Bool {
    guard let parsed = EthernetFrame.parse(skb.data, length: skb.length), parsed.etherType == .ipv4 else { return false }
    return skbChecksumHelp(skb, ipOffset: parsed.payloadOffset)
}

/// `skbChecksumHelp` for an skb whose IPv4 header is `ipOffset` bytes after `data` (0 on the
/// IP layer: Linux calls it from `ip_do_fragment` before splitting a packet).
public func skbChecksumHelp(_ skb: SKB, ipOffset: Int) -> Bool {
    let length = skb.length
    let frame = skb.data
    guard ipOffset < length, let ip = IPv4Header(frame + ipOffset, length: length - ipOffset),
          !ip.isFragment || (ip.fragmentOffset == 0 && ip.moreFragments)
    else { return false }
    let fieldOffset: Int
    switch ip.protocol {
    case .tcp: fieldOffset = 16
    case .udp: fieldOffset = 6
    default: return false
    }
    let start = ipOffset + ip.headerLength
    let transportLength = Int(ip.totalLength) - ip.headerLength
    guard transportLength >= fieldOffset + 2, start + transportLength <= length else { return false }
    let field = frame + (start + fieldOffset)
    var checksum = ~InternetChecksum.fold(InternetChecksum.sum(frame + start, count: transportLength))
    if ip.protocol == .udp && checksum == 0 { checksum = 0xFFFF }  // RFC 768: 0 means "none"
    field.storeBytes(of: checksum.bigEndian, as: UInt16.self)
    skb.checksumState = .none
    return true
}
