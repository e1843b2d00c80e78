/// IPv4 options (RFC 791 §3.1 "Options"; router alert RFC 2113; security RFC 1108).

/// An IPv4 option type octet: copied flag (bit 7), class (bits 5–6), number (bits 0–4). An open
/// type: unknown options are representable.
public struct IPv4OptionType: RawRepresentable, Hashable, Sendable {
    /// The whole type octet.
    public var rawValue: UInt8

    @inlinable
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// 0, end of option list.
    @inlinable public static var end: IPv4OptionType { IPv4OptionType(rawValue: 0) }
    /// 1, no operation (padding between options).
    @inlinable public static var nop: IPv4OptionType { IPv4OptionType(rawValue: 1) }
    /// 7, record route.
    @inlinable public static var recordRoute: IPv4OptionType { IPv4OptionType(rawValue: 7) }
    /// 68, internet timestamp.
    @inlinable public static var timestamp: IPv4OptionType { IPv4OptionType(rawValue: 68) }
    /// 130, security (RFC 1108).
    @inlinable public static var security: IPv4OptionType { IPv4OptionType(rawValue: 130) }
    /// 131, loose source and record route.
    @inlinable public static var lsrr: IPv4OptionType { IPv4OptionType(rawValue: 131) }
    /// 137, strict source and record route.
    @inlinable public static var ssrr: IPv4OptionType { IPv4OptionType(rawValue: 137) }
    /// 148, router alert (RFC 2113).
    @inlinable public static var routerAlert: IPv4OptionType { IPv4OptionType(rawValue: 148) }

    /// Whether fragments must carry a copy of this option (bit 7, RFC 791).
    @inlinable public var isCopied: Bool { rawValue & 0x80 != 0 }
    /// The option class: 0 control, 2 debugging and measurement (1 and 3 reserved).
    @inlinable public var optionClass: UInt8 { (rawValue >> 5) & 0x03 }
    /// The option number within its class.
    @inlinable public var number: UInt8 { rawValue & 0x1F }
}

/// One element of an IPv4 options area.
public enum IPv4Option {
    /// Type 0: the end of the options; iteration stops after it.
    case endOfList
    /// Type 1: a one-byte pad.
    case noOperation
    /// A type-length-value option. `offset` is where its type octet sits, counted from the start
    /// of the IP header; `value` points at the bytes after the length octet, of which there are
    /// `valueLength` (the length octet minus 2).
    case option(type: IPv4OptionType, offset: Int, value: UnsafeMutableRawPointer, valueLength: Int)
    /// An option whose length octet is missing, below 2, or runs past the header. `offset` is the
    /// option's type octet from the start of the IP header: the pointer an ICMP parameter
    /// problem reports (RFC 1812 §5.2.5). Iteration stops after it.
    case malformed(offset: Int)
}

/// Walks an IPv4 header's options without allocating. Bounds come from the header length, so
/// a lying option length yields `.malformed` instead of reading past the header.
public struct IPv4OptionIterator: IteratorProtocol, Sequence {
    @usableFromInline let header: UnsafeMutableRawPointer
    @usableFromInline let end: Int
    @usableFromInline var offset: Int

    /// Options of the header at `header` whose length (IHL × 4) is `end`.
    @inlinable
    public init(header: UnsafeMutableRawPointer, end: Int) {
        self.header = header
        self.end = end
        self.offset = 20
    }

    /// The next option, or nil at the end of the area or after `.endOfList` / `.malformed`.
    @inlinable
    public mutating func next() -> IPv4Option? {
        guard offset < end else { return nil }
        let start = offset
        let type = header.load(fromByteOffset: start, as: UInt8.self)
        switch type {
        case 0:
            offset = end
            return .endOfList
        case 1:
            offset = start &+ 1
            return .noOperation
        default:
            guard start &+ 1 < end else {
                offset = end
                return .malformed(offset: start)
            }
            let length = Int(header.load(fromByteOffset: start &+ 1, as: UInt8.self))
            guard length >= 2, length <= end &- start else {
                offset = end
                return .malformed(offset: start)
            }
            offset = start &+ length
            return .option(type: IPv4OptionType(rawValue: type), offset: start,
                           value: header + (start &+ 2), valueLength: length &- 2)
        }
    }
}

/// A view of a record route or internet timestamp option (RFC 791 §3.1), the two options a
/// router writes into as it forwards.
///
/// Layout: 0 type · 1 length · 2 pointer (the octet, counted from 1 at the type, where the
/// next entry goes) · then, for a timestamp, 3 overflow (high 4 bits: hops that found no room)
/// and flag (low 4 bits: 0 timestamps only, 1 address and timestamp, 3 prespecified
/// addresses) · the entries.
public struct IPv4RecordingOption {
    /// The option's first octet (its type).
    public let base: UnsafeMutableRawPointer

    @usableFromInline
    enum Field {
        @inlinable static var type: Int { 0 }
        @inlinable static var length: Int { 1 }
        @inlinable static var pointer: Int { 2 }
        @inlinable static var overflowAndFlag: Int { 3 }
    }

    /// A view of the option at `base`; the caller has checked its length covers the fields it
    /// reads (3 for record route, 4 for a timestamp).
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// The option type.
    @inlinable
    public var type: IPv4OptionType {
        IPv4OptionType(rawValue: base.loadBigEndian(UInt8.self, at: Field.type))
    }

    /// The option's length in octets, type and length octets included.
    @inlinable
    public var length: Int { Int(base.loadBigEndian(UInt8.self, at: Field.length)) }

    /// Where the next entry goes, counted from 1 at the type octet.
    @inlinable
    public var pointer: Int {
        get { Int(base.loadBigEndian(UInt8.self, at: Field.pointer)) }
        nonmutating set { base.storeBigEndian(UInt8(truncatingIfNeeded: newValue), at: Field.pointer) }
    }

    /// A timestamp's overflow count (0…15).
    @inlinable
    public var overflow: UInt8 {
        get { base.loadBigEndian(UInt8.self, at: Field.overflowAndFlag) >> 4 }
        nonmutating set {
            let flag = base.loadBigEndian(UInt8.self, at: Field.overflowAndFlag) & 0x0F
            base.storeBigEndian(newValue << 4 | flag, at: Field.overflowAndFlag)
        }
    }

    /// A timestamp's flag (0, 1 or 3 are defined).
    @inlinable
    public var flag: UInt8 { base.loadBigEndian(UInt8.self, at: Field.overflowAndFlag) & 0x0F }

    /// The next entry's first octet (`pointer`, counted from 1).
    @inlinable
    public var nextEntry: UnsafeMutableRawPointer { base + (pointer &- 1) }
}
