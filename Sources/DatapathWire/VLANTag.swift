/// IEEE 802.1Q VLAN tags (IEEE 802.1Q-2018 §9.6) and 802.1ad stacking, and the frame walk that
/// skips them.

/// A view of the 4 bytes that follow a VLAN TPID (0x8100 or 0x88A8): the tag control
/// information (PCP, DEI, VID) and the EtherType of what the tag encloses. `base` is the first
/// TCI byte, i.e. 14 bytes into an untagged-position frame.
///
/// Layout: 0 TCI: PCP (3 bits) | DEI (1 bit) | VID (12 bits) · 2 EtherType (2).
public struct VLANTag: FixedLengthHeader {
    /// The first byte of the TCI.
    public let base: UnsafeMutableRawPointer

    /// TCI plus inner EtherType, in bytes.
    @inlinable public static var length: Int { 4 }

    /// Where each field of the layout above starts, in bytes from `base`.
    @usableFromInline
    enum Field {
        @inlinable static var tci: Int { 0 }
        @inlinable static var etherType: Int { 2 }
    }


    /// A view the caller has already bounds-checked.
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// The whole 16-bit tag control information.
    @inlinable
    public var tci: UInt16 {
        get { base.loadBigEndian(UInt16.self, at: Field.tci) }
        nonmutating set { base.storeBigEndian(newValue, at: Field.tci) }
    }

    /// Priority code point (802.1p class), 0...7.
    @inlinable
    public var pcp: UInt8 {
        get { UInt8(truncatingIfNeeded: tci >> 13) }
        nonmutating set { tci = tci & 0x1FFF | UInt16(newValue & 7) << 13 }
    }

    /// Drop eligible indicator.
    @inlinable
    public var dei: Bool {
        get { tci & 0x1000 != 0 }
        nonmutating set { tci = newValue ? tci | 0x1000 : tci & ~0x1000 }
    }

    /// VLAN identifier, 0...4095 (0: priority tag only; 4095 reserved).
    @inlinable
    public var vid: UInt16 {
        get { tci & 0x0FFF }
        nonmutating set { tci = tci & 0xF000 | newValue & 0x0FFF }
    }

    /// The EtherType of the enclosed payload (another TPID for a stacked tag).
    @inlinable
    public var etherType: EtherType {
        get { EtherType(rawValue: base.loadBigEndian(UInt16.self, at: Field.etherType)) }
        nonmutating set { base.storeBigEndian(newValue.rawValue, at: Field.etherType) }
    }
}

/// Walks an Ethernet frame's header and up to two VLAN tags (802.1Q, or an 802.1ad outer tag
/// followed by an 802.1Q inner one) to find the payload's EtherType (Linux: `eth_type_trans`
/// plus `skb_vlan_untag`, without modifying the frame).
public enum EthernetFrame {
    /// The payload's EtherType, the outermost VLAN ID (nil when untagged) and the offset of the
    /// payload from `base`. nil when the frame is shorter than its header and tags.
    ///
    /// A frame with more than two tags comes back with the third TPID as its EtherType and 22
    /// as its payload offset, so the caller sees an unhandled protocol rather than a crash.
    @inlinable
    public static func parse(_ base: UnsafeRawPointer, length: Int) -> (etherType: EtherType, vlanID: UInt16?, payloadOffset: Int)? {
        guard let tags = parseTags(base, length: length) else { return nil }
        return (tags.etherType, tags.outerVLANID, tags.payloadOffset)
    }

    /// `parse`, reporting both VLAN IDs of a double-tagged frame (`innerVLANID` is nil unless
    /// there were two tags).
    @inlinable
    public static func parseTags(_ base: UnsafeRawPointer, length: Int)
        -> (etherType: EtherType, outerVLANID: UInt16?, innerVLANID: UInt16?, payloadOffset: Int)? {
        // Where the payload starts with no, one and two tags (14, 18, 22): each tag sits where
        // the payload would start without it.
        let untagged = EthernetHeader.length
        let singleTagged = untagged &+ VLANTag.length
        let doubleTagged = singleTagged &+ VLANTag.length
        guard length >= untagged else { return nil }
        var type = base.loadBigEndian(UInt16.self, at: EthernetHeader.Field.etherType)
        guard type == 0x8100 || type == 0x88A8 else { return (EtherType(rawValue: type), nil, nil, untagged) }
        guard length >= singleTagged else { return nil }
        let outer = base.loadBigEndian(UInt16.self, at: untagged &+ VLANTag.Field.tci) & 0x0FFF
        type = base.loadBigEndian(UInt16.self, at: untagged &+ VLANTag.Field.etherType)
        guard type == 0x8100 || type == 0x88A8 else { return (EtherType(rawValue: type), outer, nil, singleTagged) }
        guard length >= doubleTagged else { return nil }
        let inner = base.loadBigEndian(UInt16.self, at: singleTagged &+ VLANTag.Field.tci) & 0x0FFF
        type = base.loadBigEndian(UInt16.self, at: singleTagged &+ VLANTag.Field.etherType)
        return (EtherType(rawValue: type), outer, inner, doubleTagged)
    }
}
