/// What a GSO super-packet segments into (Linux: `skb_shinfo(skb)->gso_type`), in the encoding
/// of the virtio-net header that AF_PACKET exchanges (`VIRTIO_NET_HDR_GSO_*`).
public struct GSOType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8

    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    @inlinable public static var none: GSOType { GSOType(rawValue: 0) }
    /// TCP over IPv4 (`SKB_GSO_TCPV4`).
    @inlinable public static var tcpv4: GSOType { GSOType(rawValue: 1) }
    /// UDP fragmentation offload, obsolete (`SKB_GSO_UDP`).
    @inlinable public static var udp: GSOType { GSOType(rawValue: 3) }
    /// TCP over IPv6 (`SKB_GSO_TCPV6`).
    @inlinable public static var tcpv6: GSOType { GSOType(rawValue: 4) }
    /// UDP segmentation (`SKB_GSO_UDP_L4`).
    @inlinable public static var udpL4: GSOType { GSOType(rawValue: 5) }
    /// Flag: the segments carry ECN CWR as the sender set it (`SKB_GSO_TCP_ECN`).
    @inlinable public static var ecnFlag: UInt8 { 0x80 }

    /// The type without the ECN flag.
    @inlinable public var base: GSOType { GSOType(rawValue: rawValue & 0x7F) }
}

extension SKB {
    /// Whether offload work is pending: a GSO packet, or a checksum to fill (`.partial`). One
    /// load of the word holding `gsoSize`, `gsoType` and `checksumState` (layout checked in
    /// `PacketPool.init`; `.partial` is the only state with bit 1 set).
    @inlinable public var hasOffloadWork: Bool {
        UnsafeRawPointer(head).load(fromByteOffset: 0x38, as: UInt32.self) & 0x0200_FFFF != 0
    }

    /// The network-layer length of each segment a GSO packet becomes: network and transport
    /// headers plus `gsoSize` (Linux: `skb_gso_network_seglen`). Needs the network and transport
    /// header offsets (set by `ip_rcv`); `Int.max` when the TCP header is not all there.
    public var gsoNetworkSegmentLength: Int {
        let headers = transportHeader - networkHeader
        switch gsoType.base {
        case .tcpv4, .tcpv6:
            guard transportHeader + 20 <= data + length else { return Int.max }
            let dataOffset = Int(transportHeader.load(fromByteOffset: 12, as: UInt8.self) >> 4) &* 4
            return headers &+ dataOffset &+ gsoSize
        default:
            return headers &+ 8 &+ gsoSize
        }
    }

    /// Whether every segment of this GSO packet fits `mtu` (Linux: `skb_gso_validate_network_len`).
    public func gsoSegmentsFit(mtu: Int) -> Bool { gsoNetworkSegmentLength <= mtu }
}
