import DatapathCore
import DatapathWire

/// Builds Ethernet/IPv4/UDP frames for traffic generation (the role of Linux's `pktgen`):
/// one template frame built once, then per packet a copy and an RFC 1624 checksum update
/// for the flow's source port. Flows vary the UDP source port over `flows` values, or, with
/// `varyDestination`, the destination address (`destination`, `destination` + 1, …: distinct
/// routes and route-cache keys for a router under test).
public struct UDPFlowGenerator: Sendable {
    public struct Specification: Sendable {
        public var sourceMAC: MACAddress
        public var destinationMAC: MACAddress
        public var source: IPv4Address
        public var destination: IPv4Address
        public var sourcePort: UInt16 = 1024
        public var destinationPort: UInt16 = 9
        /// Frame size as RFC 2544 and pktgen count it: Ethernet header to FCS, so the bytes
        /// written are 4 fewer. At least 64.
        public var frameSize = 64
        public var flows = 1
        public var ttl: UInt8 = 64
        /// Flows differ in destination address rather than source port.
        public var varyDestination = false

        public init(sourceMAC: MACAddress, destinationMAC: MACAddress, source: IPv4Address, destination: IPv4Address) {
            self.sourceMAC = sourceMAC
            self.destinationMAC = destinationMAC
            self.source = source
            self.destination = destination
        }
    }

    public static let headerBytes = EthernetHeader.length + IPv4Header.minimumLength + UDPHeader.length

    public let specification: Specification
    /// The frame for flow 0.
    public let template: [UInt8]
    @usableFromInline let baseChecksum: UInt16
    @usableFromInline let baseIPChecksum: UInt16

    /// Fails with a message when the size does not fit a frame.
    public init(_ specification: Specification) throws(GeneratorError) {
        guard specification.frameSize >= 64, specification.frameSize <= 9018 else {
            throw GeneratorError("frame size \(specification.frameSize) is outside 64...9018 (bytes including the 4-byte FCS)")
        }
        let maximumFlows = specification.varyDestination ? 1 << 20 : 65536
        guard specification.flows >= 1, specification.flows <= maximumFlows else {
            throw GeneratorError("flows must be 1...\(maximumFlows)")
        }
        self.specification = specification
        let length = specification.frameSize - 4
        var frame = [UInt8](repeating: 0, count: length)
        let checksum = frame.withUnsafeMutableBytes { raw -> UInt16 in
            let base = raw.baseAddress!
            let ethernet = EthernetHeader(base, length: length)!
            ethernet.destination = specification.destinationMAC
            ethernet.source = specification.sourceMAC
            ethernet.etherType = .ipv4
            let ipLength = length - EthernetHeader.length
            let ip = IPv4Repr(source: specification.source, destination: specification.destination,
                              protocol: .udp, ttl: specification.ttl, payloadLength: ipLength - IPv4Header.minimumLength,
                              identification: 0, dontFragment: true, dscp: 0)
            ip.emit(to: base + EthernetHeader.length)
            let payloadLength = ipLength - IPv4Header.minimumLength - UDPHeader.length
            let payload = base + (EthernetHeader.length + IPv4Header.minimumLength + UDPHeader.length)
            for i in 0..<payloadLength { payload.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self) }
            let udp = UDPRepr(sourcePort: specification.sourcePort, destinationPort: specification.destinationPort,
                              payloadLength: payloadLength)
            let udpBase = base + (EthernetHeader.length + IPv4Header.minimumLength)
            udp.emit(to: udpBase, source: specification.source, destination: specification.destination)
            return UDPHeader(udpBase, length: UDPHeader.length)!.checksum
        }
        template = frame
        baseChecksum = checksum
        baseIPChecksum = UInt16(frame[24]) << 8 | UInt16(frame[25])
    }

    /// Bytes each frame occupies in memory (frame size less the FCS).
    public var frameLength: Int { template.count }

    /// Writes flow `flow`'s frame into an empty `skb`; false when it has no room.
    @inlinable
    public func fill(_ skb: SKB, flow: Int) -> Bool {
        guard let data = skb.put(template.count) else { return false }
        template.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        if flow != 0 && specification.varyDestination {
            let ip = IPv4Header(unchecked: data + EthernetHeader.length)
            let old = specification.destination
            let new = IPv4Address(hostOrder: old.hostOrder &+ UInt32(truncatingIfNeeded: flow))
            ip.destination = new
            ip.checksum = InternetChecksum.update(baseIPChecksum, old: old, new: new)
            let udp = UDPHeader(data + (EthernetHeader.length + IPv4Header.minimumLength), length: UDPHeader.length)!
            var checksum = InternetChecksum.update(baseChecksum, old: old, new: new)
            if checksum == 0 { checksum = 0xFFFF }
            udp.checksum = checksum
        } else if flow != 0 {
            let udp = UDPHeader(data + (EthernetHeader.length + IPv4Header.minimumLength), length: UDPHeader.length)!
            let port = specification.sourcePort &+ UInt16(truncatingIfNeeded: flow)
            udp.sourcePort = port
            var checksum = InternetChecksum.update(baseChecksum, old: specification.sourcePort, new: port)
            if checksum == 0 { checksum = 0xFFFF }
            udp.checksum = checksum
        }
        return true
    }
}

/// A generator specification that cannot be built.
public struct GeneratorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
