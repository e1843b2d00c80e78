/// How the checksum of an skb stands (Linux: `skb->ip_summed`).
public struct ChecksumState: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Nothing is known: software must verify (`CHECKSUM_NONE`).
    @inlinable public static var none: ChecksumState { ChecksumState(rawValue: 0) }
    /// The device verified it (`CHECKSUM_UNNECESSARY`, `TP_STATUS_CSUM_VALID`).
    @inlinable public static var unnecessary: ChecksumState { ChecksumState(rawValue: 1) }
    /// Still to be filled from `checksumStart` into `checksumOffset` (`CHECKSUM_PARTIAL`).
    @inlinable public static var partial: ChecksumState { ChecksumState(rawValue: 2) }
}

/// Where a frame was addressed, relative to the receiving device (Linux: `skb->pkt_type`).
public struct PacketType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public static var host: PacketType { PacketType(rawValue: 0) }
    @inlinable public static var broadcast: PacketType { PacketType(rawValue: 1) }
    @inlinable public static var multicast: PacketType { PacketType(rawValue: 2) }
    @inlinable public static var otherHost: PacketType { PacketType(rawValue: 3) }
    @inlinable public static var outgoing: PacketType { PacketType(rawValue: 4) }
    /// Looped back by the stack itself (Linux: `PACKET_LOOPBACK`, set by `dev_loopback_xmit`):
    /// a copy of a multicast or broadcast the stack sent, handed to the loopback device to come
    /// back in as received on the device it left by (`inputIfindex`, kept by lo). The receive
    /// path sets the type from the frame's destination again.
    @inlinable public static var loopback: PacketType { PacketType(rawValue: 5) }
}

/// The fixed per-packet header in pool memory (Linux: `struct sk_buff`, trimmed to what the
/// IPv4 datapath uses). Two cache lines: the first holds what every stage reads, the second
/// ownership. Offsets are from `bufferStart` so that `push`/`pull` never invalidate them.
public struct SKBHead {
    /// Intrusive link for queues (backlog, socket, neighbour pending).
    @usableFromInline package var next: UnsafeMutablePointer<SKBHead>?
    /// First byte of the packet (Linux: `skb->data`).
    @usableFromInline package var data: UnsafeMutableRawPointer
    /// First byte of the buffer (Linux: `skb->head`).
    @usableFromInline package var bufferStart: UnsafeMutableRawPointer
    /// Bytes from `data` (Linux: `skb->len`).
    @usableFromInline package var length: UInt32
    /// Bytes from `bufferStart` to the buffer's end (Linux: `skb->end - skb->head`).
    @usableFromInline package var bufferSize: UInt32
    @usableFromInline package var macOffset: UInt16
    @usableFromInline package var networkOffset: UInt16
    @usableFromInline package var transportOffset: UInt16
    /// EtherType in host order (Linux: `skb->protocol`).
    @usableFromInline package var protocolType: UInt16
    @usableFromInline package var inputIfindex: UInt16
    @usableFromInline package var outputIfindex: UInt16
    /// Flow hash (Linux: `skb->hash`), from the ring when the kernel filled it.
    @usableFromInline package var hash: UInt32
    @usableFromInline package var mark: UInt32
    /// Route handle (Linux: `skb->_skb_refdst`); 0 = none.
    @usableFromInline package var dst: UInt32
    @usableFromInline package var gsoSize: UInt16
    @usableFromInline package var gsoType: UInt8
    @usableFromInline package var checksumState: ChecksumState
    @usableFromInline package var checksumStart: UInt16
    @usableFromInline package var checksumOffset: UInt16

    // --- second cache line: ownership ---

    /// References to this head's data: 1, plus one per live clone (Linux: `dataref`).
    /// Changed only with the atomic helpers once a clone exists.
    @usableFromInline package var dataRefs: UInt32
    @usableFromInline package var packetType: PacketType
    @usableFromInline package var owner: SKBOwner
    @usableFromInline package var poolID: UInt16
    /// For a clone, the head whose buffer it shares; nil when the buffer is this head's own.
    @usableFromInline package var dataOwner: UnsafeMutablePointer<SKBHead>?
    /// For a zero-copy RX skb, the reference count of its ring block; nil otherwise.
    @usableFromInline package var ringReference: UnsafeMutablePointer<RingBlockReference>?
    /// Receive time in nanoseconds (ring time for AF_PACKET).
    @usableFromInline package var timestamp: UInt64
    /// The pool element's own buffer; `bufferStart` points here unless the data lives elsewhere.
    @usableFromInline package var ownBuffer: UnsafeMutableRawPointer
    @usableFromInline package var ownBufferSize: UInt32
    /// Scratch space for the stage that owns the skb (Linux: `skb->cb`).
    @usableFromInline package var controlBuffer: (UInt64, UInt64)
}

extension SKBHead {
    /// A free element's header: no data, its own buffer, owned by pool `poolID`.
    static func free(buffer: UnsafeMutableRawPointer, size: UInt32, poolID: UInt16) -> SKBHead {
        var head = SKBHead(
            next: nil, data: buffer, bufferStart: buffer, length: 0, bufferSize: size,
            macOffset: 0, networkOffset: 0, transportOffset: 0, protocolType: 0,
            inputIfindex: 0, outputIfindex: 0, hash: 0, mark: 0, dst: 0, gsoSize: 0, gsoType: 0,
            checksumState: .none, checksumStart: 0, checksumOffset: 0, dataRefs: 0,
            packetType: .host, owner: .free, poolID: poolID, dataOwner: nil, ringReference: nil,
            timestamp: 0, ownBuffer: buffer, ownBufferSize: size, controlBuffer: (0, 0))
        head.owner = .free
        return head
    }
}

/// Where an skb's head came from.
public struct SKBOwner: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public static var free: SKBOwner { SKBOwner(rawValue: 0) }
    @inlinable public static var allocated: SKBOwner { SKBOwner(rawValue: 1) }
}

/// Reference count of one TPACKET_V3 ring block: the block goes back to the kernel when the
/// walker has left it and every skb pointing into it has been freed.
public struct RingBlockReference {
    /// Changed only atomically: skbs of one block may be freed on several workers.
    public var references: UInt32
    public var block: UnsafeMutableRawPointer?
    @inlinable init() {
        references = 0
        block = nil
    }
}
