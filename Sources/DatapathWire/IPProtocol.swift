/// IP protocol numbers (RFC 791 §3.1 "Protocol"; registry: IANA Assigned Internet Protocol
/// Numbers, RFC 5237).

/// The 8-bit IPv4 protocol field. An open type: unknown numbers are representable.
public struct IPProtocol: RawRepresentable, Hashable, Sendable {
    /// The protocol number.
    public var rawValue: UInt8

    @inlinable
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// 1, ICMP (RFC 792).
    @inlinable public static var icmp: IPProtocol { IPProtocol(rawValue: 1) }
    /// 2, IGMP (RFC 3376).
    @inlinable public static var igmp: IPProtocol { IPProtocol(rawValue: 2) }
    /// 4, IPv4-in-IPv4 encapsulation (RFC 2003).
    @inlinable public static var ipip: IPProtocol { IPProtocol(rawValue: 4) }
    /// 6, TCP (RFC 9293).
    @inlinable public static var tcp: IPProtocol { IPProtocol(rawValue: 6) }
    /// 17, UDP (RFC 768).
    @inlinable public static var udp: IPProtocol { IPProtocol(rawValue: 17) }
    /// 41, IPv6 encapsulation (RFC 2473).
    @inlinable public static var ipv6: IPProtocol { IPProtocol(rawValue: 41) }
    /// 47, GRE (RFC 2784).
    @inlinable public static var gre: IPProtocol { IPProtocol(rawValue: 47) }
    /// 50, Encapsulating Security Payload (RFC 4303).
    @inlinable public static var esp: IPProtocol { IPProtocol(rawValue: 50) }
    /// 51, Authentication Header (RFC 4302).
    @inlinable public static var ah: IPProtocol { IPProtocol(rawValue: 51) }
    /// 132, SCTP (RFC 9260).
    @inlinable public static var sctp: IPProtocol { IPProtocol(rawValue: 132) }
    /// 255, reserved; Linux uses it for raw sockets (`IPPROTO_RAW`).
    @inlinable public static var raw: IPProtocol { IPProtocol(rawValue: 255) }
}

extension IPProtocol: CustomStringConvertible {
    /// The protocol's name, or its number.
    public var description: String {
        switch rawValue {
        case 1: "ICMP"
        case 2: "IGMP"
        case 4: "IPIP"
        case 6: "TCP"
        case 17: "UDP"
        case 41: "IPv6"
        case 47: "GRE"
        case 50: "ESP"
        case 51: "AH"
        case 132: "SCTP"
        case 255: "RAW"
        default: "\(rawValue)"
        }
    }
}
