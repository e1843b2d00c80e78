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
    let frame = skb.data
    guard let place = TransportChecksum(frame, length: skb.length, ipOffset: ipOffset) else { return false }
    var checksum = ~InternetChecksum.fold(InternetChecksum.sum(frame + place.start, count: place.length))
    if place.ip.protocol == .udp && checksum == 0 { checksum = 0xFFFF }  // RFC 768: 0 means "none"
    (frame + (place.start + place.fieldOffset)).storeBytes(of: checksum.bigEndian, as: UInt16.self)
    skb.checksumState = .none
    return true
}

/// Where the checksum of an IPv4 TCP or UDP packet lives, in a frame of `length` bytes whose
/// IPv4 header is `ipOffset` bytes in: the transport header's offset (`start`), the checksum
/// field's offset within it, and the transport length. Nil for anything else: not TCP or UDP,
/// a fragment other than the first, lengths that do not fit the frame.
struct TransportChecksum {
    let ip: IPv4Header
    let start: Int
    let fieldOffset: Int
    let length: Int

    init?(_ frame: UnsafeMutableRawPointer, length frameLength: Int, ipOffset: Int) {
        guard ipOffset < frameLength, let ip = IPv4Header(frame + ipOffset, length: frameLength - ipOffset),
              !ip.isFragment || (ip.fragmentOffset == 0 && ip.moreFragments)
        else { return nil }
        switch ip.protocol {
        case .tcp: fieldOffset = 16
        case .udp: fieldOffset = 6
        default: return nil
        }
        start = ipOffset + ip.headerLength
        length = Int(ip.totalLength) - ip.headerLength
        guard length >= fieldOffset + 2, start + length <= frameLength else { return nil }
        self.ip = ip
    }
}
