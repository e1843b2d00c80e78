/// IGMP messages (RFC 1112 v1, RFC 2236 v2, RFC 3376 v3): the types, a view of the common
/// 8-byte header, and the v3 report's group records.

/// An IGMP message type: an open set, as the wire may carry any byte.
public struct IGMPType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Membership query, every version (RFC 3376 §4.1; the version is told by length).
    @inlinable public static var membershipQuery: IGMPType { IGMPType(rawValue: 0x11) }
    /// IGMPv1 membership report (RFC 1112 Appendix I).
    @inlinable public static var v1MembershipReport: IGMPType { IGMPType(rawValue: 0x12) }
    /// IGMPv2 membership report (RFC 2236 §2.1).
    @inlinable public static var v2MembershipReport: IGMPType { IGMPType(rawValue: 0x16) }
    /// IGMPv2 leave group (RFC 2236 §2.1).
    @inlinable public static var leaveGroup: IGMPType { IGMPType(rawValue: 0x17) }
    /// IGMPv3 membership report (RFC 3376 §4.2).
    @inlinable public static var v3MembershipReport: IGMPType { IGMPType(rawValue: 0x22) }

    public var description: String { "0x" + String(rawValue, radix: 16) }
}

/// A view of an IGMP message's first 8 bytes (RFC 2236 §2, RFC 3376 §4.1): every version's
/// query and v1/v2 report and leave is exactly this; a v3 query carries more after it.
///
/// Layout: 0 type · 1 max response code (0 in v1 and in reports) · 2 checksum (2) · 4 group
/// address (4). An IGMPv3 report (RFC 3376 §4.2) reuses it as: 0 type · 1 reserved ·
/// 2 checksum · 4 reserved (2) · 6 number of group records (2), the records following.
public struct IGMPHeader: FixedLengthHeader, WholeMessageChecksum {
    /// The first byte of the message (the type).
    public let base: UnsafeMutableRawPointer

    /// Header length in bytes.
    @inlinable public static var length: Int { 8 }

    /// Where each field of the layout above starts, in bytes from `base`.
    @usableFromInline
    enum Field {
        @inlinable static var type: Int { 0 }
        @inlinable static var maxResponseCode: Int { 1 }
        @inlinable static var checksum: Int { 2 }
        @inlinable static var group: Int { 4 }
        @inlinable static var numberOfRecords: Int { 6 }
    }


    /// A view the caller has already bounds-checked.
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// Message type.
    @inlinable
    public var type: IGMPType {
        get { IGMPType(rawValue: base.loadBigEndian(UInt8.self, at: Field.type)) }
        nonmutating set { base.storeBigEndian(newValue.rawValue, at: Field.type) }
    }

    /// A query's maximum response code (tenths of a second in v2; 0 marks a v1 query).
    @inlinable
    public var maxResponseCode: UInt8 {
        get { base.loadBigEndian(UInt8.self, at: Field.maxResponseCode) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.maxResponseCode) }
    }

    /// Checksum field, host-order value, over the whole message.
    @inlinable
    public var checksum: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.checksum) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.checksum) }
    }

    /// The group a query, report or leave names (0.0.0.0 in a general query).
    @inlinable
    public var group: IPv4Address {
        get { IPv4Address(hostOrder: base.loadBigEndian(UInt32.self, at: Field.group)) }
        nonmutating set { base.storeBigEndian(newValue.hostOrder, at: Field.group) }
    }

    /// An IGMPv3 report's number of group records.
    @inlinable
    public var numberOfRecords: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.numberOfRecords) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.numberOfRecords) }
    }
}

/// An IGMPv3 group record's type (RFC 3376 §4.2.12): an open set.
public struct IGMPv3RecordType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// MODE_IS_INCLUDE: a current-state record.
    @inlinable public static var modeIsInclude: IGMPv3RecordType { IGMPv3RecordType(rawValue: 1) }
    /// MODE_IS_EXCLUDE: a current-state record (a query's answer for a joined group).
    @inlinable public static var modeIsExclude: IGMPv3RecordType { IGMPv3RecordType(rawValue: 2) }
    /// CHANGE_TO_INCLUDE_MODE: a filter-mode change (a leave, with no sources).
    @inlinable public static var changeToInclude: IGMPv3RecordType { IGMPv3RecordType(rawValue: 3) }
    /// CHANGE_TO_EXCLUDE_MODE: a filter-mode change (a join, with no sources).
    @inlinable public static var changeToExclude: IGMPv3RecordType { IGMPv3RecordType(rawValue: 4) }
}

/// An IGMPv3 membership report (RFC 3376 §4.2) of source-less group records, as values.
public struct IGMPv3ReportRepr: Hashable, Sendable {
    /// One record per group: its type and the group (no auxiliary data, no sources).
    public var records: [(type: IGMPv3RecordType, group: IPv4Address)] {
        get { zip(types, groups).map { ($0, $1) } }
        set {
            types = newValue.map(\.type)
            groups = newValue.map(\.group)
        }
    }
    @usableFromInline var types: [IGMPv3RecordType]
    @usableFromInline var groups: [IPv4Address]

    public init(records: [(type: IGMPv3RecordType, group: IPv4Address)]) {
        types = records.map(\.type)
        groups = records.map(\.group)
    }

    /// Bytes of a record without sources: type, aux length, number of sources (2), group (4).
    @inlinable public static var recordLength: Int { 8 }

    /// The message's length: the 8-byte header and the records.
    @inlinable public var length: Int { IGMPHeader.length &+ Self.recordLength &* types.count }

    /// Writes the report at `base` (room for `length` bytes) with its checksum.
    public func emit(to base: UnsafeMutableRawPointer) {
        base.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        let header = IGMPHeader(unchecked: base)
        header.type = .v3MembershipReport
        header.numberOfRecords = UInt16(truncatingIfNeeded: types.count)
        for n in types.indices {
            let record = base + IGMPHeader.length + Self.recordLength * n
            record.storeBigEndian(types[n].rawValue, at: 0)
            record.storeBigEndian(groups[n].hostOrder, at: 4)
        }
        header.fillChecksum(messageLength: length)
    }
}

/// An IGMPv1 or v2 message — a report, a leave or a query — as values (RFC 2236 §2).
public struct IGMPRepr: Hashable, Sendable {
    public var type: IGMPType
    public var maxResponseCode: UInt8
    public var group: IPv4Address

    public init(type: IGMPType, maxResponseCode: UInt8 = 0, group: IPv4Address) {
        self.type = type
        self.maxResponseCode = maxResponseCode
        self.group = group
    }

    /// The fields of the 8-byte message `header` (a v3 query's extra fields are not kept).
    public init(parsing header: IGMPHeader) {
        self.init(type: header.type, maxResponseCode: header.maxResponseCode, group: header.group)
    }

    /// Writes the 8-byte message at `base` with its checksum.
    public func emit(to base: UnsafeMutableRawPointer) {
        let header = IGMPHeader(unchecked: base)
        header.type = type
        header.maxResponseCode = maxResponseCode
        header.checksum = 0
        header.group = group
        header.fillChecksum(messageLength: IGMPHeader.length)
    }
}
