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

    /// Where each field of the layout above starts, in bytes from `base`.
    @usableFromInline
    enum Field {
        @inlinable static var versionIHL: Int { 0 }
        @inlinable static var typeOfService: Int { 1 }
        @inlinable static var totalLength: Int { 2 }
        @inlinable static var identification: Int { 4 }
        @inlinable static var flagsAndFragmentOffset: Int { 6 }
        @inlinable static var ttl: Int { 8 }
        @inlinable static var `protocol`: Int { 9 }
        @inlinable static var checksum: Int { 10 }
        @inlinable static var source: Int { 12 }
        @inlinable static var destination: Int { 16 }
        @inlinable static var options: Int { 20 }
    }

    /// A view of `length` bytes at `base`; nil unless they hold at least 20 bytes, version is 4,
    /// IHL ≥ 5 and the IHL-sized header fits in `length`. The total length field is *not*
    /// checked: see `isTotalLengthValid(bufferLength:)`.
    @inlinable
    public init?(_ base: UnsafeMutableRawPointer, length: Int) {
        guard length >= Self.minimumLength else { return nil }
        let versionIHL = base.loadBigEndian(UInt8.self, at: Field.versionIHL)
        guard versionIHL >> 4 == 4 else { return nil }
        let headerLength = Int(versionIHL & 0x0F) &* 4
        guard headerLength >= Self.minimumLength, headerLength <= length else { return nil }
        self.base = base
    }

    /// A view the caller has already checked.
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// Version 4 with a 20-byte header, no options (the first byte is 0x45): nearly every
    /// packet, told by one byte compare.
    @inlinable public var isVersion4WithoutOptions: Bool { base.loadBigEndian(UInt8.self, at: Field.versionIHL) == 0x45 }

    /// IP version (4 for any view that passed the checked constructor).
    @inlinable public var version: UInt8 { base.loadBigEndian(UInt8.self, at: Field.versionIHL) >> 4 }

    /// Header length in bytes (IHL × 4), 20...60. Setting it keeps version 4 and rounds down to
    /// a multiple of 4.
    @inlinable
    public var headerLength: Int {
        get { Int(base.loadBigEndian(UInt8.self, at: Field.versionIHL) & 0x0F) &* 4 }
        nonmutating set { base.storeBigEndian(0x40 | UInt8(truncatingIfNeeded: newValue >> 2) & 0x0F, at: Field.versionIHL) }
    }

    /// The whole second byte, DSCP and ECN together (RFC 791's type of service; what Linux's
    /// `iph->tos` holds and the route lookup keys on, `RT_TOS`).
    @inlinable
    public var typeOfService: UInt8 {
        get { base.loadBigEndian(UInt8.self, at: Field.typeOfService) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.typeOfService) }
    }

    /// Differentiated services code point, 0...63 (RFC 2474).
    @inlinable
    public var dscp: UInt8 {
        get { typeOfService >> 2 }
        nonmutating set { typeOfService = newValue << 2 | typeOfService & 0x03 }
    }

    /// Explicit congestion notification, 0...3 (RFC 3168; 3 is CE).
    @inlinable
    public var ecn: UInt8 {
        get { typeOfService & 0x03 }
        nonmutating set { typeOfService = typeOfService & 0xFC | newValue & 0x03 }
    }

    /// Total length of the datagram (header and payload) in bytes, as the sender claims it.
    @inlinable
    public var totalLength: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.totalLength) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.totalLength) }
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
        get { base.loadBigEndian(UInt16.self, at: Field.identification) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.identification) }
    }

    /// The 16 bits of flags and fragment offset.
    @inlinable
    public var flagsAndFragmentOffset: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.flagsAndFragmentOffset) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.flagsAndFragmentOffset) }
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
        get { base.loadBigEndian(UInt8.self, at: Field.ttl) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.ttl) }
    }

    /// The payload's protocol.
    @inlinable
    public var `protocol`: IPProtocol {
        get { IPProtocol(rawValue: base.loadBigEndian(UInt8.self, at: Field.protocol)) }
        nonmutating set { base.storeBigEndian(newValue.rawValue, at: Field.protocol) }
    }

    /// The header checksum field as a host-order value (see `InternetChecksum`).
    @inlinable
    public var checksum: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.checksum) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.checksum) }
    }

    /// Source address.
    @inlinable
    public var source: IPv4Address {
        get { IPv4Address(loadingFrom: base + Field.source) }
        nonmutating set { newValue.store(to: base + Field.source) }
    }

    /// Destination address.
    @inlinable
    public var destination: IPv4Address {
        get { IPv4Address(loadingFrom: base + Field.destination) }
        nonmutating set { newValue.store(to: base + Field.destination) }
    }

    /// The first byte after the header (IHL × 4 in).
    @inlinable public var payload: UnsafeMutableRawPointer { base + headerLength }

    /// The options area, 0...40 bytes after the fixed header.
    @inlinable
    public var optionBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + Field.options, count: headerLength &- Field.options)
    }

    /// The options, one at a time; offsets are from the start of the header.
    @inlinable
    public var options: IPv4OptionIterator { IPv4OptionIterator(header: base, end: headerLength) }

    /// The checksum the header should carry: the whole header summed with the checksum field
    /// counted as zero (RFC 1071). The 20-byte header (what every sender here writes, Linux's
    /// `ip_send_check` case) takes five 32-bit loads, as `isChecksumValid` does.
    @inlinable
    public func computeChecksum() -> UInt16 {
        guard base.loadBigEndian(UInt8.self, at: Field.versionIHL) == 0x45 else {
            return InternetChecksum.checksum(base, count: headerLength, excluding: checksum)
        }
        let native = UInt64(base.loadUnaligned(as: UInt32.self))
            &+ UInt64(base.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            &+ UInt64(base.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            &+ UInt64(base.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            &+ UInt64(base.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        // Native-order words summed: byte-swap the fold once (as `InternetChecksum.sum` does),
        // then take the stored field back out.
        let host = UInt64(UInt16(bigEndian: InternetChecksum.fold(native)))
        return ~InternetChecksum.fold(InternetChecksum.add(host, UInt64(~checksum)))
    }

    /// Stores `computeChecksum()` in the checksum field. The 20-byte header (every packet
    /// `ip_local_out` sends but those with options) sums its five words in native order, the
    /// field masked out: the complement of that sum, stored natively, is the checksum in
    /// network order (RFC 1071 §2(B): byte order independence), so nothing is swapped or taken
    /// back out.
    @inlinable
    public func fillChecksum() {
        guard base.loadBigEndian(UInt8.self, at: Field.versionIHL) == 0x45 else {
            checksum = computeChecksum()
            return
        }
        // The word holding the checksum is loaded whole and the field masked out (not zeroed
        // in memory first: a load spanning that narrower store would wait for it to retire).
        let native = wordSum(thirdWordMask: UInt32(0xFFFF_0000).bigEndian)
        base.storeBytes(of: ~InternetChecksum.fold(native), toByteOffset: Field.checksum, as: UInt16.self)
    }

    /// The five 32-bit words of a 20-byte header summed in native order, the third (TTL,
    /// protocol, checksum) ANDed with `thirdWordMask`. Five words in 64 bits cannot overflow
    /// (5 · 2^32 < 2^35), so there is no carry to handle.
    @inlinable @inline(__always)
    func wordSum(thirdWordMask: UInt32 = .max) -> UInt64 {
        UInt64(base.loadUnaligned(as: UInt32.self))
            &+ UInt64(base.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            &+ UInt64(base.loadUnaligned(fromByteOffset: 8, as: UInt32.self) & thirdWordMask)
            &+ UInt64(base.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            &+ UInt64(base.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
    }

    /// Whether the header (including options) sums to 0xFFFF. The 20-byte header, nearly every
    /// packet, takes five 32-bit loads and no carry handling.
    @inlinable
    public var isChecksumValid: Bool {
        if base.loadBigEndian(UInt8.self, at: Field.versionIHL) == 0x45 {
            let s = wordSum()
            // The folded one's complement sum is 0xFFFF exactly when s is a non-zero multiple
            // of 0xFFFF (2^16 ≡ 1 mod 0xFFFF, so word size and byte order keep the residue).
            // s is non-zero (the first byte is 0x45), and the compiler turns the remainder
            // test into one multiply and compare (divisibility by an odd constant).
            return s % 0xFFFF == 0
        }
        return InternetChecksum.isValid(base, count: headerLength)
    }

    /// Decrements TTL by one and patches the checksum incrementally (Linux `ip_decrease_ttl`:
    /// the TTL|protocol word drops by 0x0100, so the checksum rises by 0x0100 with the carry
    /// folded back in; RFC 1624's eqn. 3 gives the same bits, including 0x0000 rather than
    /// 0xFFFF). The caller checks TTL > 1 first (RFC 1812 §5.3.1); a TTL of 0 is left alone
    /// rather than wrapped.
    @inlinable
    public func decrementTTL() {
        let ttl = self.ttl
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
        let word = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: Field.ttl, as: UInt32.self))
        if word >> 17 != 0x7FFF {
            base.storeBytes(of: (word &+ 0xFFFF).littleEndian, toByteOffset: Field.ttl, as: UInt32.self)
            return
        }
        self.ttl = ttl &- 1
        let check = UInt32(checksum) &+ 0x0100
        checksum = UInt16(truncatingIfNeeded: check &+ (check >= 0xFFFF ? 1 : 0))
    }
}
