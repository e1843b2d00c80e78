/// ICMP for IPv4 (RFC 792; fragmentation-needed MTU from RFC 1191 §4; codes from RFC 1122
/// §3.2.2 and RFC 1812 §5.2.7.1).

/// The ICMP message type. An open type: unknown types are representable.
public struct ICMPType: RawRepresentable, Hashable, Sendable {
    /// The type octet.
    public var rawValue: UInt8

    @inlinable
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// 0, echo reply.
    @inlinable public static var echoReply: ICMPType { ICMPType(rawValue: 0) }
    /// 3, destination unreachable (codes in `ICMPCode.DestinationUnreachable`).
    @inlinable public static var destinationUnreachable: ICMPType { ICMPType(rawValue: 3) }
    /// 4, source quench (deprecated by RFC 6633; still an error type).
    @inlinable public static var sourceQuench: ICMPType { ICMPType(rawValue: 4) }
    /// 5, redirect (codes in `ICMPCode.Redirect`).
    @inlinable public static var redirect: ICMPType { ICMPType(rawValue: 5) }
    /// 8, echo request.
    @inlinable public static var echoRequest: ICMPType { ICMPType(rawValue: 8) }
    /// 11, time exceeded (codes in `ICMPCode.TimeExceeded`).
    @inlinable public static var timeExceeded: ICMPType { ICMPType(rawValue: 11) }
    /// 12, parameter problem (codes in `ICMPCode.ParameterProblem`).
    @inlinable public static var parameterProblem: ICMPType { ICMPType(rawValue: 12) }
    /// 13, timestamp request.
    @inlinable public static var timestampRequest: ICMPType { ICMPType(rawValue: 13) }
    /// 14, timestamp reply.
    @inlinable public static var timestampReply: ICMPType { ICMPType(rawValue: 14) }

    /// An error message (types 3, 4, 5, 11, 12): never sent in response to another error
    /// (RFC 1122 §3.2.2).
    @inlinable
    public var isError: Bool {
        switch rawValue {
        case 3, 4, 5, 11, 12: true
        default: false
        }
    }
}

extension ICMPType: CustomStringConvertible {
    /// The type's name, or its number.
    public var description: String {
        switch rawValue {
        case 0: "echo reply"
        case 3: "destination unreachable"
        case 4: "source quench"
        case 5: "redirect"
        case 8: "echo request"
        case 11: "time exceeded"
        case 12: "parameter problem"
        case 13: "timestamp request"
        case 14: "timestamp reply"
        default: "type \(rawValue)"
        }
    }
}

/// An ICMP code: an open type (an unknown value is representable), with the named values grouped
/// by the type they belong to.
public struct ICMPCode: RawRepresentable, Hashable, Sendable, ExpressibleByIntegerLiteral,
                        CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(integerLiteral value: UInt8) { rawValue = value }
    public var description: String { String(rawValue) }

    /// Codes for `ICMPType.destinationUnreachable` (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
    public enum DestinationUnreachable {
        /// 0, network unreachable.
        @inlinable public static var net: ICMPCode { ICMPCode(rawValue: 0) }
        /// 1, host unreachable.
        @inlinable public static var host: ICMPCode { ICMPCode(rawValue: 1) }
        /// 2, protocol unreachable.
        @inlinable public static var `protocol`: ICMPCode { ICMPCode(rawValue: 2) }
        /// 3, port unreachable.
        @inlinable public static var port: ICMPCode { ICMPCode(rawValue: 3) }
        /// 4, fragmentation needed and DF set; `nextHopMTU` carries the MTU (RFC 1191).
        @inlinable public static var fragmentationNeeded: ICMPCode { ICMPCode(rawValue: 4) }
        /// 5, source route failed.
        @inlinable public static var sourceRouteFailed: ICMPCode { ICMPCode(rawValue: 5) }
        /// 6, destination network unknown.
        @inlinable public static var networkUnknown: ICMPCode { ICMPCode(rawValue: 6) }
        /// 7, destination host unknown.
        @inlinable public static var hostUnknown: ICMPCode { ICMPCode(rawValue: 7) }
        /// 9, network administratively prohibited.
        @inlinable public static var networkProhibited: ICMPCode { ICMPCode(rawValue: 9) }
        /// 10, host administratively prohibited.
        @inlinable public static var hostProhibited: ICMPCode { ICMPCode(rawValue: 10) }
        /// 13, communication administratively prohibited (RFC 1812).
        @inlinable public static var administrativelyProhibited: ICMPCode { ICMPCode(rawValue: 13) }
    }

    /// Codes for `ICMPType.timeExceeded`.
    public enum TimeExceeded {
        /// 0, TTL exceeded in transit.
        @inlinable public static var ttl: ICMPCode { ICMPCode(rawValue: 0) }
        /// 1, fragment reassembly time exceeded.
        @inlinable public static var reassembly: ICMPCode { ICMPCode(rawValue: 1) }
    }

    /// Codes for `ICMPType.redirect`.
    public enum Redirect {
        /// 0, redirect for the network.
        @inlinable public static var network: ICMPCode { ICMPCode(rawValue: 0) }
        /// 1, redirect for the host.
        @inlinable public static var host: ICMPCode { ICMPCode(rawValue: 1) }
    }

    /// Codes for `ICMPType.parameterProblem`.
    public enum ParameterProblem {
        /// 0, `pointer` identifies the offending octet.
        @inlinable public static var pointer: ICMPCode { ICMPCode(rawValue: 0) }
        /// 1, a required option is missing.
        @inlinable public static var missingOption: ICMPCode { ICMPCode(rawValue: 1) }
        /// 2, bad length.
        @inlinable public static var badLength: ICMPCode { ICMPCode(rawValue: 2) }
    }
}

/// A view of the 8-byte ICMP header at `base`: type, code, checksum and the 4-byte "rest of
/// header" whose meaning depends on the type.
///
/// Layout: 0 type · 1 code · 2 checksum (2) · 4 rest of header (4): identifier (2) and sequence
/// (2) for echo; unused (2) and next-hop MTU (2) for fragmentation needed; pointer (1) for
/// parameter problem; gateway (4) for redirect. Errors then quote the offending IP header.
public struct ICMPHeader: FixedLengthHeader, WholeMessageChecksum {
    /// The first byte of the header (the type).
    public let base: UnsafeMutableRawPointer

    /// Header length in bytes.
    @inlinable public static var length: Int { 8 }

    /// Where each field of the layout above starts, in bytes from `base`. The readings of the
    /// rest of header overlap: the whole word (a redirect's gateway), the identifier and the
    /// pointer at 4; the sequence number (or next-hop MTU) at 6.
    @usableFromInline
    enum Field {
        @inlinable static var type: Int { 0 }
        @inlinable static var code: Int { 1 }
        @inlinable static var checksum: Int { 2 }
        @inlinable static var restOfHeader: Int { 4 }
        @inlinable static var identifier: Int { 4 }
        @inlinable static var sequenceNumber: Int { 6 }
        @inlinable static var pointer: Int { 4 }
    }


    /// A view the caller has already bounds-checked.
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// Message type.
    @inlinable
    public var type: ICMPType {
        get { ICMPType(rawValue: base.loadBigEndian(UInt8.self, at: Field.type)) }
        nonmutating set { base.storeBigEndian(newValue.rawValue, at: Field.type) }
    }

    /// Message code (meaning depends on `type`; see `ICMPCode`).
    @inlinable
    public var code: ICMPCode {
        get { ICMPCode(rawValue: base.loadBigEndian(UInt8.self, at: Field.code)) }
        nonmutating set { base.storeBigEndian(newValue.rawValue, at: Field.code) }
    }

    /// Checksum field, host-order value (see `InternetChecksum`).
    @inlinable
    public var checksum: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.checksum) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.checksum) }
    }

    /// Bytes 4–7 as one host-order word.
    @inlinable
    public var restOfHeader: UInt32 {
        get { base.loadBigEndian(UInt32.self, at: Field.restOfHeader) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.restOfHeader) }
    }

    /// Echo identifier (bytes 4–5).
    @inlinable
    public var identifier: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.identifier) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.identifier) }
    }

    /// Echo sequence number (bytes 6–7).
    @inlinable
    public var sequenceNumber: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.sequenceNumber) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.sequenceNumber) }
    }

    /// Next-hop MTU of a fragmentation-needed message (bytes 6–7, RFC 1191 §4).
    @inlinable
    public var nextHopMTU: UInt16 {
        get { sequenceNumber }
        nonmutating set { sequenceNumber = newValue }
    }

    /// Offending octet of a parameter problem (byte 4).
    @inlinable
    public var pointer: UInt8 {
        get { base.loadBigEndian(UInt8.self, at: Field.pointer) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.pointer) }
    }

    /// Gateway address of a redirect (bytes 4–7).
    @inlinable
    public var gatewayAddress: IPv4Address {
        get { IPv4Address(hostOrder: restOfHeader) }
        nonmutating set { restOfHeader = newValue.hostOrder }
    }

    /// The byte after the header: echo data, or the quoted IP header of an error.
    @inlinable public var payload: UnsafeMutableRawPointer { base + Self.length }
}
