/// IPv4 prefixes in CIDR notation (RFC 4632 §3.1).

/// An IPv4 network: an address and a prefix length 0...32. The stored `address` always has its
/// host bits cleared, so equal networks compare equal however they were written.
public struct IPv4Prefix: Hashable, Sendable {
    /// The network address (host bits zero).
    public let address: IPv4Address
    /// Number of leading network bits, 0...32.
    public let length: Int

    /// The prefix `address/length`, host bits cleared; nil when `length` is outside 0...32.
    @inlinable
    public init?(address: IPv4Address, length: Int) {
        guard length >= 0 && length <= 32 else { return nil }
        self.length = length
        self.address = IPv4Address(hostOrder: address.hostOrder & Self.maskBits(length))
    }

    /// Parses "198.18.0.0/15"; a bare address means /32. Host bits set in the address are
    /// cleared ("10.1.2.3/8" is 10.0.0.0/8). nil for anything else.
    public init?(_ string: String) {
        let bytes = string.utf8
        let slash = bytes.firstIndex(of: UInt8(ascii: "/"))
        guard let address = IPv4Address(utf8: bytes[..<(slash ?? bytes.endIndex)]) else { return nil }
        var length = 32
        if let slash {
            let text = bytes[bytes.index(after: slash)...]
            guard !text.isEmpty, text.count <= 2 else { return nil }
            length = 0
            for byte in text {
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
                length = length * 10 + Int(byte - UInt8(ascii: "0"))
            }
        }
        self.init(address: address, length: length)
    }

    /// One word of hashing (the address and length together): a full routing table keys
    /// dictionaries by prefix a million times over.
    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(UInt64(address.hostOrder) << 8 | UInt64(truncatingIfNeeded: length))
    }

    /// The netmask as a host-order number: `length` leading ones.
    @inlinable
    public static func maskBits(_ length: Int) -> UInt32 {
        length <= 0 ? 0 : UInt32.max << UInt32(32 &- min(length, 32))
    }

    /// The netmask as an address: /24 → 255.255.255.0.
    @inlinable public var netmask: IPv4Address { IPv4Address(hostOrder: Self.maskBits(length)) }

    /// The highest address in the network (the directed broadcast for prefixes up to /30).
    @inlinable public var lastAddress: IPv4Address { IPv4Address(hostOrder: address.hostOrder | ~Self.maskBits(length)) }

    /// Whether `candidate` lies in this network.
    @inlinable
    public func contains(_ candidate: IPv4Address) -> Bool {
        candidate.hostOrder & Self.maskBits(length) == address.hostOrder
    }

    /// Whether `other` is this network or a subnet of it.
    @inlinable
    public func contains(_ other: IPv4Prefix) -> Bool {
        other.length >= length && contains(other.address)
    }
}

extension IPv4Prefix: CustomStringConvertible {
    /// "198.18.0.0/15".
    public var description: String { "\(address)/\(length)" }
}
