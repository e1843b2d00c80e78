import DatapathWire

/// The fuzz harness for the wire views (issue #13): the input is one frame; every view that
/// accepts it is read whole — Ethernet and VLAN tags, IPv4 and its options, ARP, ICMP, UDP,
/// TCP and its options, ESP — and what a view accepts must lie within the bytes given (a
/// header length inside the buffer, options inside the header, a parsed representation that
/// re-emits to the same fields), else the harness traps.
public enum WireHarness {
    public static func run(_ input: UnsafeRawBufferPointer) {
        // A private, writable copy: the views take mutable pointers.
        let length = input.count
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(length, 1), alignment: 8)
        defer { buffer.deallocate() }
        if length > 0 { buffer.copyMemory(from: input.baseAddress!, byteCount: length) }
        guard let frame = EthernetFrame.parse(buffer, length: length) else { return }
        precondition(frame.payloadOffset <= length, "an Ethernet payload past the frame")
        let payload = buffer + frame.payloadOffset
        let remaining = length - frame.payloadOffset
        if frame.etherType == .arp, let arp = ARPPacket(payload, length: remaining) {
            _ = (arp.operation, arp.senderHardwareAddress, arp.senderProtocolAddress, arp.targetProtocolAddress)
        }
        guard frame.etherType == .ipv4, let ip = IPv4Header(payload, length: remaining) else { return }
        let headerLength = ip.headerLength
        precondition(headerLength >= 20 && headerLength <= remaining, "an IPv4 header length outside the buffer")
        for option in ip.options {
            if case .option(_, let offset, let value, let valueLength) = option {
                precondition(offset >= 20 && offset + 2 + valueLength <= headerLength, "an IPv4 option past the header")
                precondition(value == payload + offset + 2, "an IPv4 option's value not where it is")
            }
        }
        if let repr = IPv4Repr(parsing: ip) {
            precondition(repr.totalLength - 20 == Int(ip.totalLength) - headerLength, "IPv4Repr lost the length")
        }
        _ = ip.isChecksumValid
        let total = min(Int(ip.totalLength), remaining)
        guard total > headerLength, ip.fragmentOffset == 0 else { return }
        let transport = payload + headerLength
        let transportLength = total - headerLength
        switch ip.protocol {
        case .icmp:
            if let icmp = ICMPHeader(transport, length: transportLength) { _ = (icmp.type, icmp.code, icmp.checksum) }
        case .udp:
            if let udp = UDPHeader(transport, length: transportLength), let repr = UDPRepr(parsing: udp, bufferLength: transportLength) {
                precondition(repr.payloadLength + 8 <= transportLength, "a UDP length past the datagram")
            }
        case .tcp:
            if let tcp = TCPHeader(transport, length: transportLength) {
                precondition(tcp.dataOffset >= 20, "a TCP header shorter than 20 bytes")
                if tcp.dataOffset <= transportLength {
                    var seen = 0
                    for _ in tcp.options {
                        seen += 1
                        precondition(seen <= 40, "more TCP options than the header holds")
                    }
                }
                _ = TCPRepr(parsing: tcp, segmentLength: transportLength)
            }
        default:
            if ip.protocol.rawValue == 50, let esp = ESPHeader(transport, length: transportLength) {
                _ = (esp.spi, esp.sequenceNumber)
            }
        }
    }
}
