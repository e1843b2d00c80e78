/// An IPv4 header as plain values (RFC 791 §3.1), for building and inspecting packets.

/// The fields of an option-less IPv4 header that a sender chooses. `emit` writes a 20-byte
/// header with the checksum filled; parsing reads any valid header and drops its options.
public struct IPv4Repr: Hashable, Sendable {
    /// Source address.
    public var source: IPv4Address
    /// Destination address.
    public var destination: IPv4Address
    /// Payload protocol.
    public var `protocol`: IPProtocol
    /// Time to live.
    public var ttl: UInt8
    /// Bytes after the header (total length − header length).
    public var payloadLength: Int
    /// Identification.
    public var identification: UInt16
    /// The DF flag.
    public var dontFragment: Bool
    /// Differentiated services code point, 0...63.
    public var dscp: UInt8
    /// ECN codepoint, 0...3.
    public var ecn: UInt8

    /// A header with these fields; `payloadLength` must be at most 65515.
    @inlinable
    public init(source: IPv4Address, destination: IPv4Address, protocol: IPProtocol, ttl: UInt8,
                payloadLength: Int, identification: UInt16 = 0, dontFragment: Bool = true,
                dscp: UInt8 = 0, ecn: UInt8 = 0) {
        self.source = source
        self.destination = destination
        self.protocol = `protocol`
        self.ttl = ttl
        self.payloadLength = payloadLength
        self.identification = identification
        self.dontFragment = dontFragment
        self.dscp = dscp
        self.ecn = ecn
    }

    /// The fields of `header`; nil when its total length is shorter than its header. Neither
    /// the checksum nor the total length against the buffer is checked here (the view has
    /// `isChecksumValid` and `isTotalLengthValid(bufferLength:)`); options and fragment fields
    /// other than DF are not represented.
    @inlinable
    public init?(parsing header: IPv4Header) {
        let total = Int(header.totalLength)
        let headerLength = header.headerLength
        guard total >= headerLength else { return nil }
        self.init(source: header.source, destination: header.destination, protocol: header.protocol,
                  ttl: header.ttl, payloadLength: total &- headerLength,
                  identification: header.identification, dontFragment: header.dontFragment,
                  dscp: header.dscp, ecn: header.ecn)
    }

    /// Total length of the datagram `emit` describes.
    @inlinable public var totalLength: Int { 20 &+ payloadLength }

    /// Writes a 20-byte header at `base` (which must have room for it) with a valid checksum —
    /// or, with `checksum: false`, the field 0 for a later stage to fill (Linux's senders leave
    /// it to `ip_local_out`'s `ip_send_check`; the stack's do the same).
    @inlinable @inline(__always)
    public func emit(to base: UnsafeMutableRawPointer, checksum fillChecksum: Bool = true) {
        let versionTOS: UInt16 = 0x4500 | UInt16(dscp & 0x3F) << 2 | UInt16(ecn & 0x03)
        let total = UInt16(truncatingIfNeeded: 20 &+ payloadLength)
        let flags: UInt16 = dontFragment ? 0x4000 : 0
        let ttlProtocol = UInt16(ttl) << 8 | UInt16(`protocol`.rawValue)
        let s = source.hostOrder
        let d = destination.hostOrder
        // The checksum from the field values directly: no second pass over the bytes.
        var checksum: UInt16 = 0
        if fillChecksum {
            var sum = UInt64(versionTOS) &+ UInt64(total) &+ UInt64(identification) &+ UInt64(flags)
            sum &+= UInt64(ttlProtocol) &+ UInt64(s >> 16) &+ UInt64(s & 0xFFFF) &+ UInt64(d >> 16) &+ UInt64(d & 0xFFFF)
            checksum = ~InternetChecksum.fold(sum)
        }
        // Five 32-bit stores, one per header word: a reader that loads the header by words
        // right after (`ip_local_out`'s checksum fill, the device) gets each from one store.
        // Narrower stores it would have to wait on (a load spanning two stores is not
        // forwarded): that stall was 13 % of a UDP echo round.
        base.storeBigEndian(UInt32(versionTOS) << 16 | UInt32(total), at: IPv4Header.Field.versionIHL)
        base.storeBigEndian(UInt32(identification) << 16 | UInt32(flags), at: IPv4Header.Field.identification)
        base.storeBigEndian(UInt32(ttlProtocol) << 16 | UInt32(checksum), at: IPv4Header.Field.ttl)
        base.storeBigEndian(s, at: IPv4Header.Field.source)
        base.storeBigEndian(d, at: IPv4Header.Field.destination)
    }

    /// Writes the header with `options` after its 20 fixed bytes (a multiple of 4 bytes, at
    /// most 40, already padded as RFC 791 asks): the header length and the total length grow
    /// by them, the checksum covers them. `base` must have room for `20 + options.count`.
    @inlinable
    public func emit(to base: UnsafeMutableRawPointer, options: UnsafeRawBufferPointer) {
        precondition(options.count & 3 == 0 && options.count <= 40, "IPv4 options: a multiple of 4 bytes, at most 40")
        emit(to: base)
        guard let bytes = options.baseAddress, options.count > 0 else { return }
        let header = IPv4Header(unchecked: base)
        header.headerLength = IPv4Header.minimumLength &+ options.count
        header.totalLength = UInt16(truncatingIfNeeded: IPv4Header.minimumLength &+ options.count &+ payloadLength)
        (base + IPv4Header.minimumLength).copyMemory(from: bytes, byteCount: options.count)
        header.fillChecksum()
    }
}
