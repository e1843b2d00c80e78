/// IEEE 802.1Q VLAN tags (IEEE 802.1Q-2018 §9.6) and 802.1ad stacking, and the frame walk that
/// skips them.

/// A view of the 4 bytes that follow a VLAN TPID (0x8100 or 0x88A8): the tag control
/// information (PCP, DEI, VID) and the EtherType of what the tag encloses. `base` is the first
/// TCI byte, i.e. 14 bytes into an untagged-position frame.
public struct VLANTag {
    /// The first byte of the TCI.
    public let base: UnsafeMutableRawPointer

    /// TCI plus inner EtherType, in bytes.
    @inlinable public static var length: Int { 4 }

    /// A view of `length` bytes at `base`; nil when they cannot hold a tag.
    @inlinable
    public init?(_ base: UnsafeMutableRawPointer, length: Int) {
        guard length >= 4 else { return nil }
        self.base = base
    }

    /// A view the caller has already bounds-checked.
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// The whole 16-bit tag control information.
    @inlinable
    public var tci: UInt16 {
        get { UInt16(bigEndian: base.loadUnaligned(as: UInt16.self)) }
        nonmutating set { base.storeBytes(of: newValue.bigEndian, as: UInt16.self) }
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
        get { EtherType(rawValue: UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt16.self))) }
        nonmutating set { base.storeBytes(of: newValue.rawValue.bigEndian, toByteOffset: 2, as: UInt16.self) }
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
        guard length >= 14 else { return nil }
        var type = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
        guard type == 0x8100 || type == 0x88A8 else { return (EtherType(rawValue: type), nil, nil, 14) }
        guard length >= 18 else { return nil }
        let outer = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 14, as: UInt16.self)) & 0x0FFF
        type = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
        guard type == 0x8100 || type == 0x88A8 else { return (EtherType(rawValue: type), outer, nil, 18) }
        guard length >= 22 else { return nil }
        let inner = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 18, as: UInt16.self)) & 0x0FFF
        type = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 20, as: UInt16.self))
        return (EtherType(rawValue: type), outer, inner, 22)
    }
}
