/// Ethernet II header (IEEE 802.3 §3.1.1; RFC 894 for IPv4 over Ethernet).

/// A view of the 14-byte Ethernet II header at `base`: destination MAC, source MAC, EtherType.
/// The FCS is not part of the view (devices strip it).
///
/// Layout: 0 destination (6) · 6 source (6) · 12 EtherType (2).
public struct EthernetHeader: FixedLengthHeader {
    /// The first byte of the header (the destination MAC).
    public let base: UnsafeMutableRawPointer

    /// Header length in bytes.
    @inlinable public static var length: Int { 14 }

    /// Where each field of the layout above starts, in bytes from `base`.
    @usableFromInline
    enum Field {
        @inlinable static var destination: Int { 0 }
        @inlinable static var source: Int { 6 }
        @inlinable static var etherType: Int { 12 }
    }


    /// A view the caller has already bounds-checked.
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// The destination MAC address.
    @inlinable
    public var destination: MACAddress {
        get { MACAddress(loadingFrom: base + Field.destination) }
        nonmutating set { newValue.store(to: base + Field.destination) }
    }

    /// The source MAC address.
    @inlinable
    public var source: MACAddress {
        get { MACAddress(loadingFrom: base + Field.source) }
        nonmutating set { newValue.store(to: base + Field.source) }
    }

    /// The EtherType (or a VLAN TPID when the frame is tagged).
    @inlinable
    public var etherType: EtherType {
        get { EtherType(rawValue: base.loadBigEndian(UInt16.self, at: Field.etherType)) }
        nonmutating set { base.storeBigEndian(newValue.rawValue, at: Field.etherType) }
    }

    /// The byte after the header.
    @inlinable public var payload: UnsafeMutableRawPointer { base + Self.length }

    /// Swaps source and destination MACs in place (reflecting a frame back out).
    @inlinable
    public func swapAddresses() {
        let destination = self.destination
        self.destination = source
        source = destination
    }
}
