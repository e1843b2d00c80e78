import CDatapath

/// A packet: a trivial handle over its `SKBHead` in pool memory (Linux: `struct sk_buff *`).
/// Copying an `SKB` copies the pointer, not the packet; ownership is by convention, as in C:
/// exactly one stage holds an skb at a time and either passes it on or frees it.
@frozen
public struct SKB: Hashable, @unchecked Sendable {
    public let head: UnsafeMutablePointer<SKBHead>

    @inlinable @inline(__always)
    public init(_ head: UnsafeMutablePointer<SKBHead>) { self.head = head }

    /// First byte of the packet (Linux: `skb->data`).
    @inlinable public var data: UnsafeMutableRawPointer { head.pointee.data }

    /// Bytes from `data` (Linux: `skb->len`).
    @inlinable public var length: Int {
        get { Int(head.pointee.length) }
        nonmutating set { head.pointee.length = UInt32(truncatingIfNeeded: newValue) }
    }

    /// Free bytes before `data` (Linux: `skb_headroom`).
    @inlinable public var headroom: Int { head.pointee.data - head.pointee.bufferStart }

    /// Free bytes after the packet's end (Linux: `skb_tailroom`).
    @inlinable public var tailroom: Int {
        Int(head.pointee.bufferSize) &- headroom &- Int(head.pointee.length)
    }

    /// Moves `data` forward on an empty skb to make headroom (Linux: `skb_reserve`).
    /// Returns false, changing nothing, when the buffer cannot hold it.
    @inlinable @discardableResult
    public func reserve(_ count: Int) -> Bool {
        guard count >= 0, count <= tailroom else { return false }
        head.pointee.data += count
        return true
    }

    /// Extends the packet at its tail (Linux: `skb_put`). Returns the old tail, where the caller
    /// writes `count` bytes, or nil when the tailroom is short.
    @inlinable
    public func put(_ count: Int) -> UnsafeMutableRawPointer? {
        guard count >= 0, count <= tailroom else { return nil }
        let tail = head.pointee.data + Int(head.pointee.length)
        head.pointee.length &+= UInt32(truncatingIfNeeded: count)
        return tail
    }

    /// Prepends `count` bytes (Linux: `skb_push`). Returns the new `data`, or nil when the
    /// headroom is short.
    @inlinable
    public func push(_ count: Int) -> UnsafeMutableRawPointer? {
        guard count >= 0, count <= headroom else { return nil }
        head.pointee.data -= count
        head.pointee.length &+= UInt32(truncatingIfNeeded: count)
        return head.pointee.data
    }

    /// Removes `count` bytes from the front (Linux: `skb_pull`). Returns the new `data`, or nil
    /// when the packet is shorter than `count`.
    @inlinable
    public func pull(_ count: Int) -> UnsafeMutableRawPointer? {
        guard count >= 0, count <= length else { return nil }
        head.pointee.data += count
        head.pointee.length &-= UInt32(truncatingIfNeeded: count)
        return head.pointee.data
    }

    /// Cuts the packet to `newLength` bytes (Linux: `skb_trim`); longer lengths change nothing.
    @inlinable
    public func trim(to newLength: Int) {
        if newLength >= 0, newLength < length { head.pointee.length = UInt32(truncatingIfNeeded: newLength) }
    }

    // MARK: header offsets (from the buffer start, so they survive push and pull)

    /// Marks the current `data` as the network header (Linux: `skb_reset_network_header`).
    @inlinable public func resetNetworkHeader() {
        head.pointee.networkOffset = UInt16(truncatingIfNeeded: headroom)
    }
    @inlinable public func resetMACHeader() {
        head.pointee.macOffset = UInt16(truncatingIfNeeded: headroom)
    }
    @inlinable public func resetTransportHeader() {
        head.pointee.transportOffset = UInt16(truncatingIfNeeded: headroom)
    }
    @inlinable public func setTransportHeader(afterNetworkBytes count: Int) {
        head.pointee.transportOffset = head.pointee.networkOffset &+ UInt16(truncatingIfNeeded: count)
    }
    @inlinable public var networkHeader: UnsafeMutableRawPointer {
        head.pointee.bufferStart + Int(head.pointee.networkOffset)
    }
    @inlinable public var macHeader: UnsafeMutableRawPointer {
        head.pointee.bufferStart + Int(head.pointee.macOffset)
    }
    @inlinable public var transportHeader: UnsafeMutableRawPointer {
        head.pointee.bufferStart + Int(head.pointee.transportOffset)
    }

    // MARK: metadata

    @inlinable public var protocolType: UInt16 {
        get { head.pointee.protocolType }
        nonmutating set { head.pointee.protocolType = newValue }
    }
    @inlinable public var inputIfindex: Int {
        get { Int(head.pointee.inputIfindex) }
        nonmutating set { head.pointee.inputIfindex = UInt16(truncatingIfNeeded: newValue) }
    }
    @inlinable public var outputIfindex: Int {
        get { Int(head.pointee.outputIfindex) }
        nonmutating set { head.pointee.outputIfindex = UInt16(truncatingIfNeeded: newValue) }
    }
    @inlinable public var hash: UInt32 {
        get { head.pointee.hash }
        nonmutating set { head.pointee.hash = newValue }
    }
    @inlinable public var mark: UInt32 {
        get { head.pointee.mark }
        nonmutating set { head.pointee.mark = newValue }
    }
    /// The routing decision for this packet (Linux: `skb->_skb_refdst`), encoded by the layer
    /// that routes; 0 = not routed.
    @inlinable public var dst: UInt32 {
        get { head.pointee.dst }
        nonmutating set { head.pointee.dst = newValue }
    }
    /// The two scratch words of the stage that owns the skb (Linux: `skb->cb`).
    @inlinable public var control0: UInt64 {
        get { head.pointee.controlBuffer.0 }
        nonmutating set { head.pointee.controlBuffer.0 = newValue }
    }
    @inlinable public var control1: UInt64 {
        get { head.pointee.controlBuffer.1 }
        nonmutating set { head.pointee.controlBuffer.1 = newValue }
    }
    @inlinable public var packetType: PacketType {
        get { head.pointee.packetType }
        nonmutating set { head.pointee.packetType = newValue }
    }
    @inlinable public var checksumState: ChecksumState {
        get { head.pointee.checksumState }
        nonmutating set { head.pointee.checksumState = newValue }
    }
    /// Where a partial checksum starts, from `bufferStart` (Linux: `skb->csum_start`), and where
    /// in that header it goes (`skb->csum_offset`); meaningful while `checksumState` is `.partial`
    /// and set by a device that reported them (the virtio-net header).
    @inlinable public var checksumStart: Int {
        get { Int(head.pointee.checksumStart) }
        nonmutating set { head.pointee.checksumStart = UInt16(truncatingIfNeeded: newValue) }
    }
    @inlinable public var checksumOffset: Int {
        get { Int(head.pointee.checksumOffset) }
        nonmutating set { head.pointee.checksumOffset = UInt16(truncatingIfNeeded: newValue) }
    }
    /// Leaves the transport checksum of the header at `header` to the device (Linux:
    /// `skb_partial_csum_set` with `CHECKSUM_PARTIAL`): summed from there on, stored `offset`
    /// bytes in. The field holds the pseudo-header sum; the caller wrote it.
    @inlinable public func setPartialChecksum(header: UnsafeMutableRawPointer, offset: Int) {
        head.pointee.checksumState = .partial
        checksumStart = header - head.pointee.bufferStart
        checksumOffset = offset
    }
    /// Where a partial checksum starts, counted from `data` (a frame's own offset, as the
    /// virtio-net header carries it).
    @inlinable public var checksumStartFromData: Int { checksumStart &- (head.pointee.data - head.pointee.bufferStart) }
    /// Segment payload size of a GSO super-packet (Linux: `skb_shinfo(skb)->gso_size`); 0 for
    /// an ordinary packet.
    @inlinable public var gsoSize: Int {
        get { Int(head.pointee.gsoSize) }
        nonmutating set { head.pointee.gsoSize = UInt16(truncatingIfNeeded: newValue) }
    }
    /// The GSO type in the virtio-net encoding (`GSOType`).
    @inlinable public var gsoType: GSOType {
        get { GSOType(rawValue: head.pointee.gsoType) }
        nonmutating set { head.pointee.gsoType = newValue.rawValue }
    }
    /// Whether this is a GSO super-packet that leaves as `gsoSize`-byte segments (Linux:
    /// `skb_is_gso`).
    @inlinable public var isGSO: Bool { head.pointee.gsoSize != 0 }
    @inlinable public var timestamp: UInt64 {
        get { head.pointee.timestamp }
        nonmutating set { head.pointee.timestamp = newValue }
    }

    /// True when other skbs share this one's data (Linux: `skb_cloned`): write only after a copy.
    @inlinable public var isShared: Bool {
        if head.pointee.dataOwner != nil { return true }
        return CDatapath_atomic_load_u32(dataRefsPointer) != 1
    }

    /// True when the data lives in an AF_PACKET ring block rather than pool memory.
    @inlinable public var isRingBacked: Bool {
        if let owner = head.pointee.dataOwner { return owner.pointee.ringReference != nil }
        return head.pointee.ringReference != nil
    }

    @inlinable var dataRefsPointer: UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(head).advanced(by: MemoryLayout<SKBHead>.offset(of: \SKBHead.dataRefs)!)
            .assumingMemoryBound(to: UInt32.self)
    }

    /// The packet's bytes, for control-plane code and tests.
    public var bytes: [UInt8] {
        Array(UnsafeRawBufferPointer(start: data, count: length))
    }
}
