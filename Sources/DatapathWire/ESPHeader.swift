/// IP Encapsulating Security Payload (RFC 4303 §2: header, padding, pad length, next header, ICV).

/// A view of the 8-byte ESP header at `base`: SPI and sequence number. The (cipher-specific)
/// IV and encrypted payload follow.
///
/// Layout: 0 SPI (4) · 4 sequence number (4) · 8 payload.
public struct ESPHeader: FixedLengthHeader {
    /// The first byte of the header.
    public let base: UnsafeMutableRawPointer

    /// Header length in bytes.
    @inlinable public static var length: Int { 8 }

    /// Where each field of the layout above starts, in bytes from `base`.
    @usableFromInline
    enum Field {
        @inlinable static var spi: Int { 0 }
        @inlinable static var sequenceNumber: Int { 4 }
    }


    /// A view the caller has already bounds-checked.
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// Security parameters index (0 is reserved, 1...255 reserved by IANA; RFC 4303 §2.1).
    @inlinable
    public var spi: UInt32 {
        get { base.loadBigEndian(UInt32.self, at: Field.spi) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.spi) }
    }

    /// Sequence number (the low 32 bits when extended sequence numbers are in use, §2.2).
    @inlinable
    public var sequenceNumber: UInt32 {
        get { base.loadBigEndian(UInt32.self, at: Field.sequenceNumber) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.sequenceNumber) }
    }

    /// The first byte after the header.
    @inlinable public var payload: UnsafeMutableRawPointer { base + Self.length }
}

/// The ESP trailer, read from the end of a (decrypted) payload: `[data][padding][pad length]
/// [next header][ICV]`. `base` and `length` cover the whole region from the first data byte to
/// the end of the ICV (`icvLength` 0 when the ICV has been removed).
public struct ESPTrailer: Hashable, Sendable {
    /// Padding bytes before the pad length octet, 0...255.
    public let padLength: Int
    /// The protocol of the protected payload (4 for tunnel mode IPv4, 6 TCP, …; 59 a dummy packet).
    public let nextHeader: IPProtocol
    /// ICV bytes at the end.
    public let icvLength: Int
    /// Bytes of protected data before the padding.
    public let payloadLength: Int

    /// The trailer of the `length` bytes at `base`; nil when they cannot hold the ICV, the two
    /// trailer octets and the padding the pad length claims.
    @inlinable
    public init?(_ base: UnsafeRawPointer, length: Int, icvLength: Int) {
        guard icvLength >= 0, length >= icvLength &+ 2 else { return nil }
        let trailer = length &- icvLength &- 2
        let padLength = Int(base.load(fromByteOffset: trailer, as: UInt8.self))
        guard padLength <= trailer else { return nil }
        self.padLength = padLength
        self.nextHeader = IPProtocol(rawValue: base.load(fromByteOffset: trailer &+ 1, as: UInt8.self))
        self.icvLength = icvLength
        self.payloadLength = trailer &- padLength
    }

    /// Whether the padding is the default 1, 2, 3, … that RFC 4303 §2.4 says a receiver should
    /// check when the algorithm does not specify another. `base` is the same region as above.
    @inlinable
    public func hasDefaultPadding(_ base: UnsafeRawPointer) -> Bool {
        var index = 0
        while index < padLength {
            let byte = base.load(fromByteOffset: payloadLength &+ index, as: UInt8.self)
            guard byte == UInt8(truncatingIfNeeded: index &+ 1) else { return false }
            index &+= 1
        }
        return true
    }
}
