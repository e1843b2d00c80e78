/// EtherType values (IEEE 802.3 §3.2.6; registry: IEEE RA, RFC 7042 Appendix B).

/// The 16-bit type field of an Ethernet II frame, in host order. An open type: any value is
/// representable, so an unknown protocol is counted, not a parse failure.
public struct EtherType: RawRepresentable, Hashable, Sendable {
    /// The host-order value (0x0800 for IPv4).
    public var rawValue: UInt16

    @inlinable
    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// 0x0800, Internet Protocol version 4.
    @inlinable public static var ipv4: EtherType { EtherType(rawValue: 0x0800) }
    /// 0x0806, Address Resolution Protocol (RFC 826).
    @inlinable public static var arp: EtherType { EtherType(rawValue: 0x0806) }
    /// 0x8100, IEEE 802.1Q customer VLAN tag.
    @inlinable public static var vlan: EtherType { EtherType(rawValue: 0x8100) }
    /// 0x88A8, IEEE 802.1ad service VLAN tag (QinQ outer tag).
    @inlinable public static var qinq: EtherType { EtherType(rawValue: 0x88A8) }
    /// 0x86DD, Internet Protocol version 6.
    @inlinable public static var ipv6: EtherType { EtherType(rawValue: 0x86DD) }

    /// Either VLAN tag protocol identifier (802.1Q or 802.1ad).
    @inlinable public var isVLANTag: Bool { rawValue == 0x8100 || rawValue == 0x88A8 }
}

extension EtherType: CustomStringConvertible {
    /// The protocol's name, or "0x88b5" for values without one here.
    public var description: String {
        switch rawValue {
        case 0x0800: "IPv4"
        case 0x0806: "ARP"
        case 0x8100: "802.1Q"
        case 0x88A8: "802.1ad"
        case 0x86DD: "IPv6"
        default: "0x" + hexDigits(UInt8(rawValue >> 8)) + hexDigits(UInt8(rawValue & 0xFF))
        }
    }
}
