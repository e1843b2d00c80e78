/// UDP (RFC 768; checksum rules also from RFC 1122 §4.1.3.4).

/// A view of the 8-byte UDP header at `base`.
///
/// Layout: 0 source port (2) · 2 destination port (2) · 4 length (2) · 6 checksum (2).
public struct UDPHeader: FixedLengthHeader {
    /// The first byte of the header.
    public let base: UnsafeMutableRawPointer

    /// Header length in bytes.
    @inlinable public static var length: Int { 8 }

    /// Where the checksum is, from the header's start (Linux's `csum_offset` for UDP).
    @inlinable public static var checksumOffset: Int { Field.checksum }

    /// Where each field of the layout above starts, in bytes from `base`.
    @usableFromInline
    enum Field {
        @inlinable static var sourcePort: Int { 0 }
        @inlinable static var destinationPort: Int { 2 }
        @inlinable static var length: Int { 4 }
        @inlinable static var checksum: Int { 6 }
    }


    /// A view the caller has already bounds-checked.
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// Source port.
    @inlinable
    public var sourcePort: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.sourcePort) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.sourcePort) }
    }

    /// Destination port.
    @inlinable
    public var destinationPort: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.destinationPort) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.destinationPort) }
    }

    /// Length of header and payload in bytes, as the sender claims it.
    @inlinable
    public var length: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.length) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.length) }
    }

    /// Checksum field, host-order value (see `InternetChecksum`); 0 means "not computed".
    @inlinable
    public var checksum: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.checksum) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.checksum) }
    }

    /// Writes all four fields with one 8-byte store: a checksum pass over the header right
    /// after loads it whole (a load spanning several narrower stores waits for them to retire).
    @inlinable
    public func setFields(sourcePort: UInt16, destinationPort: UInt16, length: UInt16, checksum: UInt16) {
        let word = UInt64(sourcePort) << 48 | UInt64(destinationPort) << 32 | UInt64(length) << 16 | UInt64(checksum)
        base.storeBigEndian(word, at: Field.sourcePort)
    }

    /// The first payload byte.
    @inlinable public var payload: UnsafeMutableRawPointer { base + Self.length }

    /// Whether the length field covers at least the header and no more than `bufferLength`
    /// bytes (Linux `__udp4_lib_rcv`: `ulen < sizeof(*uh) || ulen > len` drops).
    @inlinable
    public func isLengthValid(bufferLength: Int) -> Bool {
        let claimed = Int(length)
        return claimed >= Self.length && claimed <= bufferLength
    }

    /// The checksum for the datagram's `length` bytes with the pseudo-header of `source` and
    /// `destination`, checksum field counted as zero, a result of 0 sent as 0xFFFF (RFC 768).
    /// Call only once `isLengthValid` holds.
    @inlinable
    public func computeChecksum(source: IPv4Address, destination: IPv4Address) -> UInt16 {
        let count = Int(length)
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .udp, length: count)
        let value = InternetChecksum.checksum(base, count: count, initial: pseudo, excluding: checksum)
        return value == 0 ? 0xFFFF : value
    }

    /// Stores `computeChecksum(source:destination:)` in the checksum field.
    @inlinable
    public func fillChecksum(source: IPv4Address, destination: IPv4Address) {
        checksum = computeChecksum(source: source, destination: destination)
    }

    /// True when the checksum field is 0 (the sender computed none, RFC 768) or the datagram
    /// with its pseudo-header sums to 0xFFFF. Call only once `isLengthValid` holds.
    @inlinable
    public func isChecksumValid(source: IPv4Address, destination: IPv4Address) -> Bool {
        if checksum == 0 { return true }
        let count = Int(length)
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .udp, length: count)
        return InternetChecksum.isValid(base, count: count, initial: pseudo)
    }
}

/// A UDP header as plain values. `emit` writes the header and the checksum over the payload
/// already in place after it.
public struct UDPRepr: Hashable, Sendable {
    /// Source port.
    public var sourcePort: UInt16
    /// Destination port.
    public var destinationPort: UInt16
    /// Payload bytes after the 8-byte header.
    public var payloadLength: Int

    /// A header with these fields; `payloadLength` must be at most 65527.
    @inlinable
    public init(sourcePort: UInt16, destinationPort: UInt16, payloadLength: Int) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.payloadLength = payloadLength
    }

    /// The fields of `header` in a buffer of `bufferLength` bytes; nil when its length field is
    /// below 8 or beyond the buffer. The checksum is not verified (see the view).
    @inlinable
    public init?(parsing header: UDPHeader, bufferLength: Int) {
        guard header.isLengthValid(bufferLength: bufferLength) else { return nil }
        self.init(sourcePort: header.sourcePort, destinationPort: header.destinationPort,
                  payloadLength: Int(header.length) &- 8)
    }

    /// Header and payload length.
    @inlinable public var length: Int { 8 &+ payloadLength }

    /// Writes the header at `base` and fills its checksum over the header and the
    /// `payloadLength` bytes already at `base + 8`, with the pseudo-header of `source` and
    /// `destination` (a computed 0 is sent as 0xFFFF, RFC 768).
    @inlinable
    public func emit(to base: UnsafeMutableRawPointer, source: IPv4Address, destination: IPv4Address) {
        let header = UDPHeader(unchecked: base)
        header.setFields(sourcePort: sourcePort, destinationPort: destinationPort,
                         length: UInt16(truncatingIfNeeded: length), checksum: 0)
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .udp, length: length)
        let value = ~InternetChecksum.fold(InternetChecksum.sum(base, count: length, initial: pseudo))
        header.checksum = value == 0 ? 0xFFFF : value
    }
}
