import DatapathWire

/// How a balance-xor bond picks a slave for a frame (Linux: `xmit_hash_policy`).
public enum XmitHashPolicy: String, Sendable, CaseIterable {
    /// Source and destination MAC and EtherType: one peer, one slave.
    case layer2 = "layer2"
    /// IPv4 addresses and TCP/UDP/SCTP ports: flows spread over slaves.
    case layer34 = "layer3+4"
}

/// The transmit hashes of Linux's bonding driver, as Documentation/networking/bonding.rst
/// gives them, on a frame whose `data` is the Ethernet header.
public enum BondHash {
    /// `layer2`: destination MAC[5] ⊕ source MAC[5] ⊕ EtherType.
    @inlinable @inline(__always)
    public static func layer2(_ frame: UnsafeRawPointer) -> UInt32 {
        let ethernet = unsafe EthernetHeader(unchecked: UnsafeMutableRawPointer(mutating: frame))
        return UInt32(ethernet.destination[5] ^ ethernet.source[5]) ^ UInt32(ethernet.etherType.rawValue)
    }

    /// `layer3+4`: the port word ⊕ source ⊕ destination address, each as the driver reads it
    /// (the header's bytes loaded as a host word: `.bigEndian` of the host-order value), folded
    /// (`h ^= h >> 16; h ^= h >> 8; h >>= 1`). Fragments and protocols without ports hash
    /// their addresses only; non-IPv4 frames fall back to `layer2`.
    @inlinable @inline(__always)
    public static func layer34(_ frame: UnsafeRawPointer, length: Int) -> UInt32 {
        let ethernet = unsafe EthernetHeader(unchecked: UnsafeMutableRawPointer(mutating: frame))
        guard length >= EthernetHeader.length + IPv4Header.minimumLength, ethernet.etherType == .ipv4 else {
            return unsafe layer2(frame)
        }
        let ip = unsafe IPv4Header(unchecked: ethernet.payload)
        let headerLength = ip.headerLength
        var hash: UInt32 = 0
        if !ip.isFragment, headerLength >= IPv4Header.minimumLength, length >= EthernetHeader.length &+ headerLength &+ 4 {
            switch ip.protocol.rawValue {
            case 6, 17, 33, 132, 136:   // TCP, UDP, DCCP, SCTP, UDP-Lite: source and destination port first
                let ports = unsafe UDPHeader(unchecked: ip.payload)
                hash = (UInt32(ports.sourcePort) << 16 | UInt32(ports.destinationPort)).bigEndian
            default:
                break
            }
        }
        hash ^= ip.source.hostOrder.bigEndian ^ ip.destination.hostOrder.bigEndian
        hash ^= hash >> 16
        hash ^= hash >> 8
        return hash >> 1
    }
}
