/// IPv4 addresses (RFC 791 §3.2; special-purpose ranges from RFC 1112, RFC 1122 §3.2.1.3,
/// RFC 3927 and RFC 6890).

/// An IPv4 address, held as a host-order integer: 192.0.2.1 is `0xC000_0201`. Comparison is
/// numeric, so sorting puts 10.0.0.0 before 192.168.0.0.
public struct IPv4Address: Hashable, Sendable, Comparable {
    /// The address as a host-order number (first octet most significant).
    public var hostOrder: UInt32

    /// The address whose host-order value is `hostOrder`.
    @inlinable
    public init(hostOrder: UInt32) {
        self.hostOrder = hostOrder
    }

    /// The address `a.b.c.d`.
    @inlinable
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        hostOrder = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Reads four octets in network order at `p` (any alignment).
    @inlinable
    public init(loadingFrom p: UnsafeRawPointer) {
        hostOrder = UInt32(bigEndian: p.loadUnaligned(as: UInt32.self))
    }

    /// Writes the four octets in network order to `p` (any alignment).
    @inlinable
    public func store(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: hostOrder.bigEndian, as: UInt32.self)
    }

    /// 0.0.0.0.
    @inlinable public static var zero: IPv4Address { IPv4Address(hostOrder: 0) }
    /// 255.255.255.255, the limited broadcast address.
    @inlinable public static var broadcast: IPv4Address { IPv4Address(hostOrder: 0xFFFF_FFFF) }

    /// 224.0.0.0/4 (RFC 1112).
    @inlinable public var isMulticast: Bool { hostOrder & 0xF000_0000 == 0xE000_0000 }
    /// 255.255.255.255 only (the limited broadcast; a subnet's broadcast needs the prefix).
    @inlinable public var isBroadcast: Bool { hostOrder == 0xFFFF_FFFF }
    /// 127.0.0.0/8 (RFC 1122 §3.2.1.3).
    @inlinable public var isLoopback: Bool { hostOrder & 0xFF00_0000 == 0x7F00_0000 }
    /// 0.0.0.0.
    @inlinable public var isZero: Bool { hostOrder == 0 }
    /// 169.254.0.0/16 (RFC 3927).
    @inlinable public var isLinkLocal: Bool { hostOrder & 0xFFFF_0000 == 0xA9FE_0000 }
    /// 240.0.0.0/4 less the limited broadcast (RFC 1112 class E, "reserved").
    @inlinable public var isReserved: Bool { hostOrder & 0xF000_0000 == 0xF000_0000 && !isBroadcast }
    /// 224.0.0.0/24: link-local multicast, never forwarded (RFC 5771).
    @inlinable public var isLinkLocalMulticast: Bool { hostOrder & 0xFFFF_FF00 == 0xE000_0000 }

    /// The octet at `index` (0 is first on the wire), 0...3.
    @inlinable
    public subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < 4, "IPv4 address octet index out of range")
        return UInt8(truncatingIfNeeded: hostOrder >> UInt32(24 &- 8 &* index))
    }

    @inlinable
    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool {
        lhs.hostOrder < rhs.hostOrder
    }

    /// Parses a strict dotted quad: four decimal octets 0...255, no leading zeros (which some
    /// parsers read as octal), no spaces. nil for anything else.
    public init?(_ string: String) {
        self.init(utf8: string.utf8)
    }

    /// Parses dotted-quad text given as its UTF-8 bytes (a slice of a longer word, say).
    public init?(utf8 bytes: some Sequence<UInt8>) {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for byte in bytes {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                guard digits == 0 || octet != 0 else { return nil }  // leading zero
                octet = octet * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard octet <= 255 else { return nil }
            } else if byte == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | octet
                dots += 1
                octet = 0
                digits = 0
            } else {
                return nil
            }
        }
        guard dots == 3, digits > 0 else { return nil }
        self.init(hostOrder: value << 8 | octet)
    }
}

extension IPv4Address: CustomStringConvertible {
    /// Dotted quad: "192.0.2.1".
    public var description: String {
        "\(self[0]).\(self[1]).\(self[2]).\(self[3])"
    }
}
