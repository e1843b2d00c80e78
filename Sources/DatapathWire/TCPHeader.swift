/// The TCP header (RFC 9293 §3.1; ECE/CWR from RFC 3168 §6.1).

/// The TCP control bits: the low 12 bits of bytes 12–13 (FIN … CWR, then AE and the reserved
/// bits, which `rawValue` keeps so that writing flags back never clears them).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    /// Host-order control bits.
    public var rawValue: UInt16

    @inlinable
    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// No more data from sender.
    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    /// Synchronize sequence numbers.
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    /// Reset the connection.
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    /// Push function.
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    /// Acknowledgment field is significant.
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    /// Urgent pointer field is significant.
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    /// ECN-echo (RFC 3168).
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    /// Congestion window reduced (RFC 3168).
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }
    /// The bit above CWR: NS in RFC 3540 (historic), AE in Accurate ECN. Compare flags with
    /// `contains` or mask with `.known` when a peer may set it.
    @inlinable public static var ae: TCPFlags { TCPFlags(rawValue: 0x100) }
    /// The eight classic control bits, FIN through CWR: `flags.intersection(.known) == .syn`.
    @inlinable public static var known: TCPFlags { TCPFlags(rawValue: 0xFF) }
}

/// A view of a TCP header at `base`.
///
/// Layout: 0 source port (2) · 2 destination port (2) · 4 sequence (4) · 8 acknowledgment (4) ·
/// 12 data offset (4 bits) | reserved (4 bits) · 13 flags · 14 window (2) · 16 checksum (2) ·
/// 18 urgent pointer (2) · 20 options (data offset − 20).
public struct TCPHeader {
    /// The first byte of the header.
    public let base: UnsafeMutableRawPointer

    /// Length of a header without options, in bytes.
    @inlinable public static var minimumLength: Int { 20 }

    /// Where each field of the layout above starts, in bytes from `base`. The control bits are
    /// the low 12 bits of the 16-bit word at `flags`, which shares its first byte with the data
    /// offset.
    @usableFromInline
    enum Field {
        @inlinable static var sourcePort: Int { 0 }
        @inlinable static var destinationPort: Int { 2 }
        @inlinable static var sequenceNumber: Int { 4 }
        @inlinable static var acknowledgmentNumber: Int { 8 }
        @inlinable static var dataOffset: Int { 12 }
        @inlinable static var flags: Int { 12 }
        @inlinable static var window: Int { 14 }
        @inlinable static var checksum: Int { 16 }
        @inlinable static var urgentPointer: Int { 18 }
        @inlinable static var options: Int { 20 }
    }

    /// A view of `length` bytes at `base`; nil unless they hold 20 bytes and the data offset is
    /// at least 20 and within `length`.
    @inlinable
    public init?(_ base: UnsafeMutableRawPointer, length: Int) {
        guard length >= Self.minimumLength else { return nil }
        let dataOffset = Int(base.loadBigEndian(UInt8.self, at: Field.dataOffset) >> 4) &* 4
        guard dataOffset >= Self.minimumLength, dataOffset <= length else { return nil }
        self.base = base
    }

    /// A view the caller has already checked.
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

    /// Sequence number.
    @inlinable
    public var sequenceNumber: UInt32 {
        get { base.loadBigEndian(UInt32.self, at: Field.sequenceNumber) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.sequenceNumber) }
    }

    /// Acknowledgment number.
    @inlinable
    public var acknowledgmentNumber: UInt32 {
        get { base.loadBigEndian(UInt32.self, at: Field.acknowledgmentNumber) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.acknowledgmentNumber) }
    }

    /// Header length including options, in bytes (data offset × 4), 20...60. Setting it rounds
    /// down to a multiple of 4 and keeps the reserved bits.
    @inlinable
    public var dataOffset: Int {
        get { Int(base.loadBigEndian(UInt8.self, at: Field.dataOffset) >> 4) &* 4 }
        nonmutating set {
            let reserved = base.loadBigEndian(UInt8.self, at: Field.dataOffset) & 0x0F
            base.storeBigEndian(UInt8(truncatingIfNeeded: newValue >> 2) << 4 | reserved, at: Field.dataOffset)
        }
    }

    /// Control bits (the 12 bits after the data offset).
    @inlinable
    public var flags: TCPFlags {
        get { TCPFlags(rawValue: base.loadBigEndian(UInt16.self, at: Field.flags) & 0x0FFF) }
        nonmutating set {
            let word = base.loadBigEndian(UInt16.self, at: Field.flags)
            base.storeBigEndian(word & 0xF000 | newValue.rawValue & 0x0FFF, at: Field.flags)
        }
    }

    /// Receive window (unscaled).
    @inlinable
    public var window: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.window) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.window) }
    }

    /// Checksum field, host-order value (see `InternetChecksum`).
    @inlinable
    public var checksum: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.checksum) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.checksum) }
    }

    /// Urgent pointer.
    @inlinable
    public var urgentPointer: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.urgentPointer) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.urgentPointer) }
    }

    /// The first payload byte (data offset in).
    @inlinable public var payload: UnsafeMutableRawPointer { base + dataOffset }

    /// The options area, 0...40 bytes.
    @inlinable
    public var optionBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + Field.options, count: dataOffset &- Field.options)
    }

    /// The options, one at a time, without allocating.
    @inlinable
    public var options: TCPOptionIterator { TCPOptionIterator(header: base, end: dataOffset) }

    /// The checksum for a segment of `segmentLength` bytes (header and payload, within the
    /// buffer) with the pseudo-header of `source` and `destination`, the checksum field counted
    /// as zero.
    @inlinable
    public func computeChecksum(source: IPv4Address, destination: IPv4Address, segmentLength: Int) -> UInt16 {
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .tcp, length: segmentLength)
        return InternetChecksum.checksum(base, count: segmentLength, initial: pseudo, excluding: checksum)
    }

    /// Stores `computeChecksum(source:destination:segmentLength:)` in the checksum field.
    @inlinable
    public func fillChecksum(source: IPv4Address, destination: IPv4Address, segmentLength: Int) {
        checksum = computeChecksum(source: source, destination: destination, segmentLength: segmentLength)
    }

    /// Whether the segment with its pseudo-header sums to 0xFFFF (TCP's checksum is mandatory).
    @inlinable
    public func isChecksumValid(source: IPv4Address, destination: IPv4Address, segmentLength: Int) -> Bool {
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .tcp, length: segmentLength)
        return InternetChecksum.isValid(base, count: segmentLength, initial: pseudo)
    }
}
