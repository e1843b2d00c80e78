/// 48-bit IEEE 802 MAC addresses (IEEE 802-2014 §8; text form as in RFC 7042 §2.1).

/// A 48-bit MAC address, held as one integer: the first octet on the wire is the most
/// significant of the 48 low bits of `bits`. Equality and hashing cost one integer compare.
public struct MACAddress: Hashable, Sendable {
    /// The address as a 48-bit big-endian number (top 16 bits zero).
    public let bits: UInt64

    /// The address whose octets, in wire order, are the 48 low bits of `bits`.
    @inlinable
    public init(bits: UInt64) {
        self.bits = bits & 0xFFFF_FFFF_FFFF
    }

    /// The address with octets `b0` (first on the wire) through `b5`.
    @inlinable
    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        let high = UInt64(b0) << 40 | UInt64(b1) << 32 | UInt64(b2) << 24
        bits = high | UInt64(b3) << 16 | UInt64(b4) << 8 | UInt64(b5)
    }

    /// Reads six octets at `p` (any alignment).
    @inlinable
    public init(loadingFrom p: UnsafeRawPointer) {
        let high = UInt32(bigEndian: p.loadUnaligned(as: UInt32.self))
        let low = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        bits = UInt64(high) << 16 | UInt64(low)
    }

    /// Writes the six octets to `p` (any alignment).
    @inlinable
    public func store(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: UInt32(truncatingIfNeeded: bits >> 16).bigEndian, as: UInt32.self)
        p.storeBytes(of: UInt16(truncatingIfNeeded: bits).bigEndian, toByteOffset: 4, as: UInt16.self)
    }

    /// The six octets at `p`, as they lie in memory, loaded as one host-order word (a 4-byte and
    /// a 2-byte load, no byte swap): the form per-packet code compares and hashes addresses in.
    /// On little-endian hosts bit 0 is the first octet's group (multicast) bit.
    @inlinable @inline(__always)
    public static func wireWord(at p: UnsafeRawPointer) -> UInt64 {
        UInt64(p.loadUnaligned(as: UInt32.self)) | UInt64(p.loadUnaligned(fromByteOffset: 4, as: UInt16.self)) << 32
    }

    /// This address in the form of `wireWord(at:)`.
    @inlinable
    public var wireWord: UInt64 {
        var octets: UInt64 = 0
        return withUnsafeMutableBytes(of: &octets) { raw in
            store(to: raw.baseAddress!)
            return MACAddress.wireWord(at: raw.baseAddress!)
        }
    }

    /// ff:ff:ff:ff:ff:ff.
    @inlinable public static var broadcast: MACAddress { MACAddress(bits: 0xFFFF_FFFF_FFFF) }
    /// 00:00:00:00:00:00.
    @inlinable public static var zero: MACAddress { MACAddress(bits: 0) }

    /// All ones.
    @inlinable public var isBroadcast: Bool { bits == 0xFFFF_FFFF_FFFF }
    /// The group bit (I/G, bit 0 of the first octet) is set; true for broadcast too.
    @inlinable public var isMulticast: Bool { bits & (1 << 40) != 0 }
    /// Not a group address.
    @inlinable public var isUnicast: Bool { !isMulticast }
    /// All zeros (an unset address).
    @inlinable public var isZero: Bool { bits == 0 }
    /// The U/L bit (bit 1 of the first octet): locally administered rather than vendor-assigned.
    @inlinable public var isLocallyAdministered: Bool { bits & (1 << 41) != 0 }

    /// The octet at `index` (0 is first on the wire), 0...5.
    @inlinable
    public subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < 6, "MAC address octet index out of range")
        return UInt8(truncatingIfNeeded: bits >> UInt64(40 &- 8 &* index))
    }

    /// Parses six groups of one or two hex digits separated by `:` or `-` ("02:00:00:00:00:01").
    /// nil for anything else.
    public init?(_ string: String) {
        var value: UInt64 = 0
        var octet: UInt64 = 0
        var groups = 0
        var digits = 0
        var separator: Character?
        for character in string {
            if character.isASCII, let nibble = character.hexDigitValue {
                guard digits < 2 else { return nil }
                octet = octet << 4 | UInt64(nibble)
                digits += 1
            } else if character == ":" || character == "-" {
                guard digits > 0, groups < 5, separator == nil || separator == character else { return nil }
                separator = character
                value = value << 8 | octet
                groups += 1
                octet = 0
                digits = 0
            } else {
                return nil
            }
        }
        guard groups == 5, digits > 0 else { return nil }
        self.init(bits: value << 8 | octet)
    }
}

extension MACAddress: CustomStringConvertible {
    /// Lowercase, colon-separated, two digits per octet: "02:00:00:00:00:01".
    public var description: String {
        var text = ""
        text.reserveCapacity(17)
        for index in 0..<6 {
            if index > 0 { text.append(":") }
            text.append(hexDigits(self[index]))
        }
        return text
    }
}

/// Two lowercase hex digits for `byte`.
func hexDigits(_ byte: UInt8) -> String {
    let text = String(byte, radix: 16)
    return byte < 16 ? "0" + text : text
}
