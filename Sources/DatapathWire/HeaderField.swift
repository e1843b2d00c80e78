/// Field access for the header views: loads and stores in network byte order (big-endian,
/// RFC 791 Appendix B) at a byte offset, with no alignment assumed.
///
/// Each view names its field offsets once, in a nested `Field` table beside the layout in the
/// view's doc comment, and reads and writes every fixed field through these calls:
///
/// ```swift
/// var totalLength: UInt16 {
///     get { base.loadBigEndian(UInt16.self, at: Field.totalLength) }
///     nonmutating set { base.storeBigEndian(newValue, at: Field.totalLength) }
/// }
/// ```
///
/// The offsets are `@inlinable` computed properties rather than stored `static let`s: a client
/// module then folds them to constants, where a stored global could cost a load (and a lazy
/// initialization check) per access. Inlined and specialized for the concrete type, an accessor
/// is the same unaligned load or store and byte swap as the hand-written expression it replaced.
///
/// Byte fields go through the same calls: for a `UInt8` the byte order is moot and the swap is
/// a no-op.

extension UnsafeRawPointer {
    /// The `T` stored in network byte order at `offset` bytes from `self` (any alignment), as a
    /// host-order value.
    @inlinable @inline(__always)
    func loadBigEndian<T: FixedWidthInteger & BitwiseCopyable>(_ type: T.Type, at offset: Int) -> T {
        T(bigEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension UnsafeMutableRawPointer {
    /// The `T` stored in network byte order at `offset` bytes from `self` (any alignment), as a
    /// host-order value.
    @inlinable @inline(__always)
    func loadBigEndian<T: FixedWidthInteger & BitwiseCopyable>(_ type: T.Type, at offset: Int) -> T {
        T(bigEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Stores the host-order `value` in network byte order at `offset` bytes from `self` (any
    /// alignment).
    @inlinable @inline(__always)
    func storeBigEndian<T: FixedWidthInteger & BitwiseCopyable>(_ value: T, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }
}

/// A view of a header whose length is fixed (Ethernet, VLAN tag, UDP, ICMP, IGMP, ESP): it
/// gives each the checked constructor, so the bounds check is written once.
public protocol FixedLengthHeader {
    /// Header length in bytes.
    static var length: Int { get }
    /// A view the caller has already bounds-checked.
    init(unchecked base: UnsafeMutableRawPointer)
}

extension FixedLengthHeader {
    /// A view of `length` bytes at `base`; nil when they cannot hold the header.
    @inlinable
    public init?(_ base: UnsafeMutableRawPointer, length: Int) {
        guard length >= Self.length else { return nil }
        self.init(unchecked: base)
    }
}

/// A header whose checksum covers the whole message from its first byte (ICMP, IGMP: RFC 792,
/// RFC 2236 §2): the three checksum calls, written once. `messageLength` is the message's
/// length in bytes (header and data), which the caller takes from the IP total length it
/// validated.
public protocol WholeMessageChecksum {
    /// The message's first byte.
    var base: UnsafeMutableRawPointer { get }
    /// The checksum field, host-order value.
    var checksum: UInt16 { get nonmutating set }
}

extension WholeMessageChecksum {
    /// The checksum over the whole message, with the checksum field counted as zero.
    @inlinable
    public func computeChecksum(messageLength: Int) -> UInt16 {
        InternetChecksum.checksum(base, count: messageLength, excluding: checksum)
    }

    /// Stores `computeChecksum(messageLength:)` in the checksum field.
    @inlinable
    public func fillChecksum(messageLength: Int) {
        checksum = computeChecksum(messageLength: messageLength)
    }

    /// Whether the message sums to 0xFFFF.
    @inlinable
    public func isChecksumValid(messageLength: Int) -> Bool {
        InternetChecksum.isValid(base, count: messageLength)
    }
}
