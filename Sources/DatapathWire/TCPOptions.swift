/// TCP options (RFC 9293 §3.2: end, no-op, MSS; RFC 7323: window scale, timestamps;
/// RFC 2018: SACK-permitted and SACK).

/// One SACK block: the sequence numbers bounding a received range, `left` first.
public struct TCPSACKBlock: Hashable, Sendable {
    /// First sequence number of the block.
    public var left: UInt32
    /// Sequence number just after the block.
    public var right: UInt32

    @inlinable
    public init(left: UInt32, right: UInt32) {
        self.left = left
        self.right = right
    }
}

/// Up to four SACK blocks held inline (four is the most a 40-byte options area carries), so
/// parsing a SACK option allocates nothing.
public struct TCPSACKBlocks: RandomAccessCollection, Hashable, Sendable {
    /// The most blocks one option can hold.
    @inlinable public static var capacity: Int { 4 }

    @usableFromInline var b0 = TCPSACKBlock(left: 0, right: 0)
    @usableFromInline var b1 = TCPSACKBlock(left: 0, right: 0)
    @usableFromInline var b2 = TCPSACKBlock(left: 0, right: 0)
    @usableFromInline var b3 = TCPSACKBlock(left: 0, right: 0)
    @usableFromInline var storedCount = 0

    /// No blocks.
    @inlinable
    public init() {}

    /// The given blocks; any beyond the fourth are dropped.
    @inlinable
    public init(_ blocks: [TCPSACKBlock]) {
        for block in blocks.prefix(Self.capacity) { append(block) }
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { storedCount }

    /// The block at `index`, 0..<count.
    @inlinable
    public subscript(index: Int) -> TCPSACKBlock {
        precondition(index >= 0 && index < storedCount, "SACK block index out of range")
        switch index {
        case 0: return b0
        case 1: return b1
        case 2: return b2
        default: return b3
        }
    }

    /// Adds a block; false (and no change) when four are already held.
    @inlinable @discardableResult
    public mutating func append(_ block: TCPSACKBlock) -> Bool {
        switch storedCount {
        case 0: b0 = block
        case 1: b1 = block
        case 2: b2 = block
        case 3: b3 = block
        default: return false
        }
        storedCount &+= 1
        return true
    }

    @inlinable
    public static func == (lhs: TCPSACKBlocks, rhs: TCPSACKBlocks) -> Bool {
        lhs.elementsEqual(rhs)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(storedCount)
        for block in self { hasher.combine(block) }
    }
}

/// One element of a TCP options area.
public enum TCPOption: Hashable, Sendable {
    /// Kind 0: the end of the options; iteration stops after it.
    case endOfList
    /// Kind 1: a one-byte pad.
    case noOperation
    /// Kind 2, length 4: maximum segment size.
    case maximumSegmentSize(UInt16)
    /// Kind 3, length 3: window scale shift count (RFC 7323 caps its use at 14).
    case windowScale(UInt8)
    /// Kind 4, length 2: SACK may be used.
    case sackPermitted
    /// Kind 5, length 2 + 8n (n 1...4): selective acknowledgment blocks.
    case sack(TCPSACKBlocks)
    /// Kind 8, length 10: timestamp value and echo reply.
    case timestamps(value: UInt32, echo: UInt32)
    /// Any other kind with a well-formed length (which counts the kind and length bytes).
    case unknown(kind: UInt8, length: UInt8)
    /// A missing length byte, a length below 2 or past the options area, or a known kind with
    /// the wrong length; iteration stops after it.
    case malformed
}

/// Walks a TCP header's options without allocating. Bounds come from the data offset, so a
/// lying option length yields `.malformed` instead of reading past the header.
public struct TCPOptionIterator: IteratorProtocol, Sequence {
    @usableFromInline let header: UnsafeMutableRawPointer
    @usableFromInline let end: Int
    @usableFromInline var offset: Int

    /// Options of the TCP header at `header` whose data offset in bytes is `end`.
    @inlinable
    public init(header: UnsafeMutableRawPointer, end: Int) {
        self.header = header
        self.end = end
        self.offset = 20
    }

    /// The next option, or nil at the end of the area or after `.endOfList` / `.malformed`.
    @inlinable
    public mutating func next() -> TCPOption? {
        guard offset < end else { return nil }
        let start = offset
        let kind = header.load(fromByteOffset: start, as: UInt8.self)
        if kind == 0 {
            offset = end
            return .endOfList
        }
        if kind == 1 {
            offset = start &+ 1
            return .noOperation
        }
        guard start &+ 1 < end else { return stop() }
        let length = Int(header.load(fromByteOffset: start &+ 1, as: UInt8.self))
        guard length >= 2, length <= end &- start else { return stop() }
        offset = start &+ length
        let value = start &+ 2
        switch kind {
        case 2:
            guard length == 4 else { return stop() }
            return .maximumSegmentSize(load16(value))
        case 3:
            guard length == 3 else { return stop() }
            return .windowScale(header.load(fromByteOffset: value, as: UInt8.self))
        case 4:
            guard length == 2 else { return stop() }
            return .sackPermitted
        case 5:
            let blockBytes = length &- 2
            guard blockBytes >= 8, blockBytes <= 32, blockBytes & 7 == 0 else { return stop() }
            var blocks = TCPSACKBlocks()
            var at = value
            while at < start &+ length {
                blocks.append(TCPSACKBlock(left: load32(at), right: load32(at &+ 4)))
                at &+= 8
            }
            return .sack(blocks)
        case 8:
            guard length == 10 else { return stop() }
            return .timestamps(value: load32(value), echo: load32(value &+ 4))
        default:
            return .unknown(kind: kind, length: UInt8(truncatingIfNeeded: length))
        }
    }

    @inlinable
    mutating func stop() -> TCPOption {
        offset = end
        return .malformed
    }

    @inlinable
    func load16(_ at: Int) -> UInt16 {
        header.loadBigEndian(UInt16.self, at: at)
    }

    @inlinable
    func load32(_ at: Int) -> UInt32 {
        header.loadBigEndian(UInt32.self, at: at)
    }
}
