/// ARP for IPv4 over Ethernet (RFC 826; operation codes from RFC 5227 and the IANA ARP registry).

/// The ARP operation code. An open type: unknown operations (RARP's 3 and 4, InARP's 8 and 9)
/// are representable.
public struct ARPOperation: RawRepresentable, Hashable, Sendable {
    /// The host-order operation code.
    public var rawValue: UInt16

    @inlinable
    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// 1, "who has target protocol address?".
    @inlinable public static var request: ARPOperation { ARPOperation(rawValue: 1) }
    /// 2, "sender protocol address is at sender hardware address".
    @inlinable public static var reply: ARPOperation { ARPOperation(rawValue: 2) }
}

extension ARPOperation: CustomStringConvertible {
    /// "request", "reply", or the number.
    public var description: String {
        switch rawValue {
        case 1: "request"
        case 2: "reply"
        default: "\(rawValue)"
        }
    }
}

/// A view of a 28-byte ARP packet for Ethernet hardware and IPv4 protocol addresses.
///
/// Layout: 0 htype (2) · 2 ptype (2) · 4 hlen · 5 plen · 6 operation (2) · 8 sender MAC (6) ·
/// 14 sender IPv4 (4) · 18 target MAC (6) · 24 target IPv4 (4).
public struct ARPPacket {
    /// The first byte of the packet (the hardware type).
    public let base: UnsafeMutableRawPointer

    /// Packet length in bytes for Ethernet/IPv4.
    @inlinable public static var length: Int { 28 }

    /// Where each field of the layout above starts, in bytes from `base`.
    @usableFromInline
    enum Field {
        @inlinable static var hardwareType: Int { 0 }
        @inlinable static var protocolType: Int { 2 }
        @inlinable static var hardwareLength: Int { 4 }
        @inlinable static var protocolLength: Int { 5 }
        @inlinable static var operation: Int { 6 }
        @inlinable static var senderHardwareAddress: Int { 8 }
        @inlinable static var senderProtocolAddress: Int { 14 }
        @inlinable static var targetHardwareAddress: Int { 18 }
        @inlinable static var targetProtocolAddress: Int { 24 }
    }

    /// A view of `length` bytes at `base`; nil when they are too few or the packet is not
    /// Ethernet (htype 1, hlen 6) / IPv4 (ptype 0x0800, plen 4).
    @inlinable
    public init?(_ base: UnsafeMutableRawPointer, length: Int) {
        guard length >= Self.length else { return nil }
        // htype 0x0001, ptype 0x0800, hlen 6, plen 4 as one big-endian 64-bit word.
        let fixed = base.loadBigEndian(UInt64.self, at: Field.hardwareType) >> 16
        guard fixed == 0x0001_0800_0604 else { return nil }
        self.base = base
    }

    /// A view the caller has already checked.
    @inlinable
    public init(unchecked base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// The operation.
    @inlinable
    public var operation: ARPOperation {
        get { ARPOperation(rawValue: base.loadBigEndian(UInt16.self, at: Field.operation)) }
        nonmutating set { base.storeBigEndian(newValue.rawValue, at: Field.operation) }
    }

    /// Sender hardware address.
    @inlinable
    public var senderHardwareAddress: MACAddress {
        get { MACAddress(loadingFrom: base + Field.senderHardwareAddress) }
        nonmutating set { newValue.store(to: base + Field.senderHardwareAddress) }
    }

    /// Sender protocol address.
    @inlinable
    public var senderProtocolAddress: IPv4Address {
        get { IPv4Address(loadingFrom: base + Field.senderProtocolAddress) }
        nonmutating set { newValue.store(to: base + Field.senderProtocolAddress) }
    }

    /// Target hardware address (zero in a request).
    @inlinable
    public var targetHardwareAddress: MACAddress {
        get { MACAddress(loadingFrom: base + Field.targetHardwareAddress) }
        nonmutating set { newValue.store(to: base + Field.targetHardwareAddress) }
    }

    /// Target protocol address.
    @inlinable
    public var targetProtocolAddress: IPv4Address {
        get { IPv4Address(loadingFrom: base + Field.targetProtocolAddress) }
        nonmutating set { newValue.store(to: base + Field.targetProtocolAddress) }
    }

    /// A gratuitous ARP announces the sender's own address: sender and target protocol
    /// addresses are equal (RFC 5227 §3).
    @inlinable
    public var isGratuitous: Bool { senderProtocolAddress == targetProtocolAddress }
}

/// An Ethernet/IPv4 ARP packet as plain values.
public struct ARPRepr: Hashable, Sendable {
    /// The operation.
    public var operation: ARPOperation
    /// Sender hardware address.
    public var senderHardwareAddress: MACAddress
    /// Sender protocol address.
    public var senderProtocolAddress: IPv4Address
    /// Target hardware address.
    public var targetHardwareAddress: MACAddress
    /// Target protocol address.
    public var targetProtocolAddress: IPv4Address

    /// The packet with these fields.
    @inlinable
    public init(operation: ARPOperation, senderHardwareAddress: MACAddress, senderProtocolAddress: IPv4Address,
                targetHardwareAddress: MACAddress, targetProtocolAddress: IPv4Address) {
        self.operation = operation
        self.senderHardwareAddress = senderHardwareAddress
        self.senderProtocolAddress = senderProtocolAddress
        self.targetHardwareAddress = targetHardwareAddress
        self.targetProtocolAddress = targetProtocolAddress
    }

    /// The fields of a checked view (the view's constructor has done all validation).
    @inlinable
    public init(parsing packet: ARPPacket) {
        self.init(operation: packet.operation,
                  senderHardwareAddress: packet.senderHardwareAddress,
                  senderProtocolAddress: packet.senderProtocolAddress,
                  targetHardwareAddress: packet.targetHardwareAddress,
                  targetProtocolAddress: packet.targetProtocolAddress)
    }

    /// Writes the 28-byte packet at `base`, which must have room for `ARPPacket.length` bytes.
    @inlinable
    public func emit(to base: UnsafeMutableRawPointer) {
        // htype 1 and ptype 0x0800, then hlen 6 and plen 4.
        base.storeBigEndian(UInt32(0x0001_0800), at: ARPPacket.Field.hardwareType)
        base.storeBigEndian(UInt16(0x0604), at: ARPPacket.Field.hardwareLength)
        let packet = ARPPacket(unchecked: base)
        packet.operation = operation
        packet.senderHardwareAddress = senderHardwareAddress
        packet.senderProtocolAddress = senderProtocolAddress
        packet.targetHardwareAddress = targetHardwareAddress
        packet.targetProtocolAddress = targetProtocolAddress
    }
}
