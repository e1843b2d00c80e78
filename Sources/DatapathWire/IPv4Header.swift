/// The IPv4 header (RFC 791 §3.1; DSCP/ECN per RFC 2474 and RFC 3168; checksum per RFC 1071,
/// TTL decrement with incremental update per RFC 1624 and RFC 1812 §5.3.1).

/// A view of an IPv4 header at `base`.
///
/// Layout: 0 version|IHL · 1 DSCP|ECN · 2 total length (2) · 4 identification (2) ·
/// 6 flags|fragment offset (2) · 8 TTL · 9 protocol · 10 checksum (2) · 12 source (4) ·
/// 16 destination (4) · 20 options (IHL×4 − 20).
public struct IPv4Header {
    /// The first byte of the header (version and IHL).
    public let base: UnsafeMutableRawPointer

    /// Length of a header without options, in bytes.
    @inlinable public static var minimumLength: Int { 20 }

    /// A view of `length` bytes at `base`; nil unless they hold at least 20 bytes, version is 4,
    /// IHL ≥ 5 and the IHL-sized header fits in `length`. The total length field is *not*
    /// checked: see `isTotalLengthValid(bufferLength:)`.
    @inlinable
    public init?(_ base: UnsafeMutableRawPointer, length: Int) {
        guard length >= 20 else { return nil }
        let versionIHL = base.load(as: UInt8.self)
        guard versionIHL >> 4 == 4 else { return nil }
        let headerLength = Int(versionIHL & 0x0F) &* 4
        guard headerLength >= 20, headerLength <= length else { return nil }
        self.base = base
    }

    /// A view the caller has already checked.
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// IP version (4 for any view that passed the checked constructor).
    @inlinable public var version: UInt8 { base.load(as: UInt8.self) >> 4 }

    /// Header length in bytes (IHL × 4), 20...60. Setting it keeps version 4 and rounds down to
    /// a multiple of 4.
    @inlinable
    public var headerLength: Int {
        get { Int(base.load(as: UInt8.self) & 0x0F) &* 4 }
        nonmutating set { base.storeBytes(of: 0x40 | UInt8(truncatingIfNeeded: newValue >> 2) & 0x0F, as: UInt8.self) }
    }

    /// The whole second byte, DSCP and ECN together (RFC 791's type of service; what Linux's
    /// `iph->tos` holds and the route lookup keys on, `RT_TOS`).
    @inlinable
    public var typeOfService: UInt8 {
        get { base.load(fromByteOffset: 1, as: UInt8.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 1, as: UInt8.self) }
    }

    /// Differentiated services code point, 0...63 (RFC 2474).
    @inlinable
    public var dscp: UInt8 {
        get { base.load(fromByteOffset: 1, as: UInt8.self) >> 2 }
        nonmutating set {
            let ecn = base.load(fromByteOffset: 1, as: UInt8.self) & 0x03
            base.storeBytes(of: newValue << 2 | ecn, toByteOffset: 1, as: UInt8.self)
        }
    }

    /// Explicit congestion notification, 0...3 (RFC 3168; 3 is CE).
    @inlinable
    public var ecn: UInt8 {
        get { base.load(fromByteOffset: 1, as: UInt8.self) & 0x03 }
        nonmutating set {
            let dscpBits = base.load(fromByteOffset: 1, as: UInt8.self) & 0xFC
            base.storeBytes(of: dscpBits | newValue & 0x03, toByteOffset: 1, as: UInt8.self)
        }
    }

    /// Total length of the datagram (header and payload) in bytes, as the sender claims it.
    @inlinable
    public var totalLength: UInt16 {
        get { UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) }
        nonmutating set { base.storeBytes(of: newValue.bigEndian, toByteOffset: 2, as: UInt16.self) }
    }

    /// Whether the total length covers at least the header and no more than `bufferLength`
    /// bytes (Linux `ip_rcv_core`: `len < iph->ihl*4 || skb->len < len` drops). Trailing bytes
    /// beyond the total length (Ethernet padding) are allowed; trim them.
    @inlinable
    public func isTotalLengthValid(bufferLength: Int) -> Bool {
        let total = Int(totalLength)
        return total >= headerLength && total <= bufferLength
    }

    /// Identification, for reassembly.
    @inlinable
    public var identification: UInt16 {
        get { UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 4, as: UInt16.self)) }
        nonmutating set { base.storeBytes(of: newValue.bigEndian, toByteOffset: 4, as: UInt16.self) }
    }

    /// The 16 bits of flags and fragment offset.
    @inlinable
    public var flagsAndFragmentOffset: UInt16 {
        get { UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) }
        nonmutating set { base.storeBytes(of: newValue.bigEndian, toByteOffset: 6, as: UInt16.self) }
    }

    /// DF: the datagram must not be fragmented.
    @inlinable
    public var dontFragment: Bool {
        get { flagsAndFragmentOffset & 0x4000 != 0 }
        nonmutating set { flagsAndFragmentOffset = newValue ? flagsAndFragmentOffset | 0x4000 : flagsAndFragmentOffset & ~0x4000 }
    }

    /// MF: more fragments follow.
    @inlinable
    public var moreFragments: Bool {
        get { flagsAndFragmentOffset & 0x2000 != 0 }
        nonmutating set { flagsAndFragmentOffset = newValue ? flagsAndFragmentOffset | 0x2000 : flagsAndFragmentOffset & ~0x2000 }
    }

    /// Fragment offset in 8-byte units, 0...8191.
    @inlinable
    public var fragmentOffset: UInt16 {
        get { flagsAndFragmentOffset & 0x1FFF }
        nonmutating set { flagsAndFragmentOffset = flagsAndFragmentOffset & 0xE000 | newValue & 0x1FFF }
    }

    /// Fragment offset in bytes.
    @inlinable public var fragmentOffsetBytes: Int { Int(fragmentOffset) &* 8 }

    /// MF set or a non-zero offset: this is a fragment, not a whole datagram.
    @inlinable public var isFragment: Bool { flagsAndFragmentOffset & 0x3FFF != 0 }

    /// Time to live.
    @inlinable
    public var ttl: UInt8 {
        get { base.load(fromByteOffset: 8, as: UInt8.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 8, as: UInt8.self) }
    }

    /// The payload's protocol.
    @inlinable
    public var `protocol`: IPProtocol {
        get { IPProtocol(rawValue: base.load(fromByteOffset: 9, as: UInt8.self)) }
        nonmutating set { base.storeBytes(of: newValue.rawValue, toByteOffset: 9, as: UInt8.self) }
    }

    /// The header checksum field as a host-order value (see `InternetChecksum`).
    @inlinable
    public var checksum: UInt16 {
        get { UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 10, as: UInt16.self)) }
        nonmutating set { base.storeBytes(of: newValue.bigEndian, toByteOffset: 10, as: UInt16.self) }
    }

    /// Source address.
    @inlinable
    public var source: IPv4Address {
        get { IPv4Address(loadingFrom: base + 12) }
        nonmutating set { newValue.store(to: base + 12) }
    }

    /// Destination address.
    @inlinable
    public var destination: IPv4Address {
        get { IPv4Address(loadingFrom: base + 16) }
        nonmutating set { newValue.store(to: base + 16) }
    }

    /// The first byte after the header (IHL × 4 in).
    @inlinable public var payload: UnsafeMutableRawPointer { base + headerLength }

    /// The options area, 0...40 bytes after the fixed header.
    @inlinable
    public var optionBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + 20, count: headerLength &- 20)
    }

    /// The options, one at a time; offsets are from the start of the header.
    @inlinable
    public var options: IPv4OptionIterator { IPv4OptionIterator(header: base, end: headerLength) }

    /// The checksum the header should carry: the whole header summed with the checksum field
    /// counted as zero (RFC 1071).
    @inlinable
    public func computeChecksum() -> UInt16 {
        // Subtracting the stored field (adding its complement) is the same as zeroing it.
        let all = InternetChecksum.sum(base, count: headerLength)
        return ~InternetChecksum.fold(InternetChecksum.add(all, UInt64(~checksum)))
    }

    /// Stores `computeChecksum()` in the checksum field.
    @inlinable
    public func fillChecksum() {
        checksum = computeChecksum()
    }

    /// Whether the header (including options) sums to 0xFFFF. The 20-byte header, nearly every
    /// packet, takes five 32-bit loads and no carry handling.
    @inlinable
    public var isChecksumValid: Bool {
        if base.load(as: UInt8.self) == 0x45 {
            // Five 32-bit words summed in 64 bits cannot overflow (5 · 2^32 < 2^35).
            let s = UInt64(base.loadUnaligned(as: UInt32.self))
                &+ UInt64(base.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                &+ UInt64(base.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
                &+ UInt64(base.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
                &+ UInt64(base.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
            // The folded one's complement sum is 0xFFFF exactly when s is a non-zero multiple
            // of 0xFFFF (2^16 ≡ 1 mod 0xFFFF, so word size and byte order keep the residue).
            // s is non-zero (the first byte is 0x45), and the compiler turns the remainder
            // test into one multiply and compare (divisibility by an odd constant).
            return s % 0xFFFF == 0
        }
        return InternetChecksum.fold(InternetChecksum.sum(base, count: headerLength)) == 0xFFFF
    }

    /// Decrements TTL by one and patches the checksum incrementally (Linux `ip_decrease_ttl`:
    /// the TTL|protocol word drops by 0x0100, so the checksum rises by 0x0100 with the carry
    /// folded back in; RFC 1624's eqn. 3 gives the same bits, including 0x0000 rather than
    /// 0xFFFF). The caller checks TTL > 1 first (RFC 1812 §5.3.1); a TTL of 0 is left alone
    /// rather than wrapped.
    @inlinable
    public func decrementTTL() {
        let ttl = base.load(fromByteOffset: 8, as: UInt8.self)
        guard ttl != 0 else { return }
        decrementTTL(from: ttl)
    }

    /// `decrementTTL()` for a caller that has just read the TTL, `ttl` (at least 1).
    @inlinable
    public func decrementTTL(from ttl: UInt8) {
        // TTL, protocol and checksum as one little-endian word, t | p << 8 | hi << 16 | lo << 24
        // (the checksum is hi << 8 | lo): adding 0xFFFF takes 1 from the TTL (no borrow: it is
        // at least 1) and adds 0x0100 to the checksum, the carry out of `hi` landing on `lo` as
        // the folded carry. Only checksums 0xFEFF and 0xFFFF fold otherwise (to 0x0000, 0x0100).
        let word = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        if word >> 17 != 0x7FFF {
            base.storeBytes(of: (word &+ 0xFFFF).littleEndian, toByteOffset: 8, as: UInt32.self)
            return
        }
        base.storeBytes(of: ttl &- 1, toByteOffset: 8, as: UInt8.self)
        let check = UInt32(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 10, as: UInt16.self))) &+ 0x0100
        let patched = UInt16(truncatingIfNeeded: check &+ (check >= 0xFFFF ? 1 : 0))
        base.storeBytes(of: patched.bigEndian, toByteOffset: 10, as: UInt16.self)
    }
}
