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
        UInt32(frame.load(fromByteOffset: 5, as: UInt8.self) ^ frame.load(fromByteOffset: 11, as: UInt8.self))
            ^ UInt32(UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 12, as: UInt16.self)))
    }

    /// `layer3+4`: the port word (as in the header) ⊕ source ⊕ destination address, folded
    /// (`h ^= h >> 16; h ^= h >> 8; h >>= 1`). Fragments and protocols without ports hash
    /// their addresses only; non-IPv4 frames fall back to `layer2`.
    @inlinable @inline(__always)
    public static func layer34(_ frame: UnsafeRawPointer, length: Int) -> UInt32 {
        guard length >= 34, frame.loadUnaligned(fromByteOffset: 12, as: UInt16.self) == UInt16(0x0800).bigEndian else {
            return layer2(frame)
        }
        let ip = frame + 14
        let headerLength = Int(ip.load(as: UInt8.self) & 0x0F) &* 4
        var hash: UInt32 = 0
        let fragment = UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & 0x3FFF
        if fragment == 0, headerLength >= 20, length >= 14 &+ headerLength &+ 4 {
            switch ip.load(fromByteOffset: 9, as: UInt8.self) {
            case 6, 17, 33, 132, 136:   // TCP, UDP, DCCP, SCTP, UDP-Lite
                hash = (ip + headerLength).loadUnaligned(as: UInt32.self)
            default:
                break
            }
        }
        hash ^= ip.loadUnaligned(fromByteOffset: 12, as: UInt32.self) ^ ip.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
        hash ^= hash >> 16
        hash ^= hash >> 8
        return hash >> 1
    }
}
