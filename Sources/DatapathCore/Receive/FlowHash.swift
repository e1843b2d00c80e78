/// A keyed flow hash over the IPv4 5-tuple of an Ethernet frame (Linux: `skb_get_hash` through
/// the flow dissector), used when the ring did not carry the kernel's hash. The key is random
/// per process so that an attacker cannot aim flows at one CPU or one cache set.
public struct FlowHasher: Sendable {
    public let key: UInt64

    public init(key: UInt64 = UInt64.random(in: 1...UInt64.max)) { self.key = key }

    /// Hash of the frame at `frame` (MAC header first) of `length` bytes; non-IPv4 frames hash
    /// their MAC addresses and EtherType.
    @inlinable
    public func hash(frame: UnsafeRawPointer, length: Int) -> UInt32 {
        guard length >= 14 else { return mix(UInt64(length)) }
        let etherType = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
        if etherType == 0x0800, length >= 34 {
            let ip = frame + 14
            let ihl = Int(ip.load(as: UInt8.self) & 0x0F) &* 4
            let proto = ip.load(fromByteOffset: 9, as: UInt8.self)
            let addresses = ip.loadUnaligned(fromByteOffset: 12, as: UInt64.self)
            var ports: UInt32 = 0
            let fragment = UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & 0x3FFF
            if fragment == 0, proto == 6 || proto == 17, ihl >= 20, length >= 14 &+ ihl &+ 4 {
                ports = (ip + ihl).loadUnaligned(as: UInt32.self)
            }
            return mix(addresses ^ (UInt64(ports) << 8 | UInt64(proto)) &* 0x9E37_79B9_7F4A_7C15)
        }
        let macs = frame.loadUnaligned(as: UInt64.self) ^ frame.loadUnaligned(fromByteOffset: 6, as: UInt64.self)
        return mix(macs ^ UInt64(etherType))
    }

    /// A 64→32 bit finaliser (xor-shift-multiply), keyed.
    @inlinable @inline(__always)
    public func mix(_ value: UInt64) -> UInt32 {
        var x = value ^ key
        x ^= x >> 33
        x &*= 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 33
        x &*= 0xC4CE_B9FE_1A85_EC53
        x ^= x >> 33
        return UInt32(truncatingIfNeeded: x)
    }
}
