/// A TCP header and its common options as plain values (RFC 9293 §3.1, RFC 7323, RFC 2018).

/// A TCP timestamps option (RFC 7323 §3).
public struct TCPTimestamps: Hashable, Sendable {
    /// TSval: the sender's clock.
    public var value: UInt32
    /// TSecr: the most recent TSval received from the peer.
    public var echo: UInt32

    @inlinable
    public init(value: UInt32, echo: UInt32) {
        self.value = value
        self.echo = echo
    }
}

/// A TCP segment header as plain values, with the options this stack understands. Unknown
/// options are skipped when parsing and never emitted.
public struct TCPRepr: Hashable, Sendable {
    /// Source port.
    public var sourcePort: UInt16
    /// Destination port.
    public var destinationPort: UInt16
    /// Sequence number.
    public var sequenceNumber: UInt32
    /// Acknowledgment number.
    public var acknowledgmentNumber: UInt32
    /// Control bits.
    public var flags: TCPFlags
    /// Receive window (unscaled).
    public var window: UInt16
    /// Urgent pointer.
    public var urgentPointer: UInt16
    /// MSS option.
    public var maximumSegmentSize: UInt16?
    /// Window scale option (shift count).
    public var windowScale: UInt8?
    /// SACK-permitted option.
    public var sackPermitted: Bool
    /// SACK option blocks (empty: no option).
    public var sackBlocks: TCPSACKBlocks
    /// Timestamps option.
    public var timestamps: TCPTimestamps?
    /// Payload bytes after the header.
    public var payloadLength: Int

    /// A header with these fields.
    @inlinable
    public init(sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32,
                acknowledgmentNumber: UInt32 = 0, flags: TCPFlags, window: UInt16,
                urgentPointer: UInt16 = 0, maximumSegmentSize: UInt16? = nil, windowScale: UInt8? = nil,
                sackPermitted: Bool = false, sackBlocks: TCPSACKBlocks = TCPSACKBlocks(),
                timestamps: TCPTimestamps? = nil, payloadLength: Int = 0) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.urgentPointer = urgentPointer
        self.maximumSegmentSize = maximumSegmentSize
        self.windowScale = windowScale
        self.sackPermitted = sackPermitted
        self.sackBlocks = sackBlocks
        self.timestamps = timestamps
        self.payloadLength = payloadLength
    }

    /// The fields of `header` in a segment of `segmentLength` bytes (header and payload); nil
    /// when an option is malformed or the segment is shorter than the header. The checksum is
    /// not verified (see the view). A repeated option: the last one wins.
    @inlinable
    public init?(parsing header: TCPHeader, segmentLength: Int) {
        let dataOffset = header.dataOffset
        guard segmentLength >= dataOffset else { return nil }
        self.init(sourcePort: header.sourcePort, destinationPort: header.destinationPort,
                  sequenceNumber: header.sequenceNumber, acknowledgmentNumber: header.acknowledgmentNumber,
                  flags: header.flags, window: header.window, urgentPointer: header.urgentPointer,
                  payloadLength: segmentLength &- dataOffset)
        for option in header.options {
            switch option {
            case .endOfList, .noOperation, .unknown: break
            case .maximumSegmentSize(let mss): maximumSegmentSize = mss
            case .windowScale(let shift): windowScale = shift
            case .sackPermitted: sackPermitted = true
            case .sack(let blocks): sackBlocks = blocks
            case .timestamps(let value, let echo): timestamps = TCPTimestamps(value: value, echo: echo)
            case .malformed: return nil
            }
        }
    }

    /// SACK blocks that `emit` writes: as many as fit in 40 option bytes beside the others.
    @inlinable
    public var emittedSACKCount: Int {
        guard !sackBlocks.isEmpty else { return 0 }
        let room = 40 &- fixedOptionsLength &- 2
        return Swift.max(0, Swift.min(sackBlocks.count, room / 8))
    }

    @inlinable
    var fixedOptionsLength: Int {
        (maximumSegmentSize == nil ? 0 : 4) &+ (windowScale == nil ? 0 : 3)
            &+ (sackPermitted ? 2 : 0) &+ (timestamps == nil ? 0 : 10)
    }

    /// Header length `emit` writes: 20 plus the options, padded to a multiple of 4.
    @inlinable
    public var headerLength: Int {
        let sack = emittedSACKCount
        let options = fixedOptionsLength &+ (sack == 0 ? 0 : 2 &+ 8 &* sack)
        return 20 &+ ((options &+ 3) & ~3)
    }

    /// Writes the header and options at `base` (room for `headerLength` bytes) and fills the
    /// checksum over them and the `payloadLength` bytes already at `base + headerLength`, with
    /// the pseudo-header of `source` and `destination`. Options go in the order MSS, window
    /// scale, SACK-permitted, timestamps, SACK, then zero (end-of-list) padding. Returns
    /// `headerLength`.
    @inlinable @discardableResult
    public func emit(to base: UnsafeMutableRawPointer, source: IPv4Address, destination: IPv4Address) -> Int {
        let headerLength = self.headerLength
        let header = TCPHeader(unchecked: base)
        header.sourcePort = sourcePort
        header.destinationPort = destinationPort
        header.sequenceNumber = sequenceNumber
        header.acknowledgmentNumber = acknowledgmentNumber
        base.storeBigEndian(UInt8(truncatingIfNeeded: headerLength >> 2) << 4, at: TCPHeader.Field.dataOffset)
        header.flags = flags
        header.window = window
        header.checksum = 0
        header.urgentPointer = urgentPointer
        var at = TCPHeader.Field.options
        func put8(_ value: UInt8) {
            base.storeBigEndian(value, at: at)
            at &+= 1
        }
        func put16(_ value: UInt16) {
            base.storeBigEndian(value, at: at)
            at &+= 2
        }
        func put32(_ value: UInt32) {
            base.storeBigEndian(value, at: at)
            at &+= 4
        }
        if let mss = maximumSegmentSize {
            put8(2); put8(4); put16(mss)
        }
        if let shift = windowScale {
            put8(3); put8(3); put8(shift)
        }
        if sackPermitted {
            put8(4); put8(2)
        }
        if let timestamps {
            put8(8); put8(10); put32(timestamps.value); put32(timestamps.echo)
        }
        let sackCount = emittedSACKCount
        if sackCount > 0 {
            put8(5); put8(UInt8(truncatingIfNeeded: 2 &+ 8 &* sackCount))
            for index in 0..<sackCount {
                put32(sackBlocks[index].left)
                put32(sackBlocks[index].right)
            }
        }
        while at < headerLength { put8(0) }
        let segmentLength = headerLength &+ payloadLength
        header.checksum = header.computeChecksum(source: source, destination: destination, segmentLength: segmentLength)
        return headerLength
    }
}
