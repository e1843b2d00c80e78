/// The Internet checksum: RFC 1071 (computation), RFC 1624 (incremental update), RFC 768 and
/// RFC 9293 §3.1 (the IPv4 pseudo-header).
///
/// ## Byte-order convention
///
/// Every `UInt16` checksum or folded sum here is the **host-order value of the big-endian
/// field**: the number you get from `UInt16(bigEndian: p.loadUnaligned(as: UInt16.self))`, and
/// the one you write back with `storeBytes(of: value.bigEndian, as: UInt16.self)`. The header
/// views' `checksum` properties read and write exactly that, so a value computed here can be
/// assigned to `header.checksum` directly, and `update(_:old:new:)` takes the host-order values
/// of the 16-bit fields that changed (`udp.sourcePort`, `ttl << 8 | protocol`, …).
///
/// The `UInt64` accumulators returned by `sum` and `pseudoHeaderSum` are in the same host-order
/// domain: a one's complement sum of host-order 16-bit words, not yet folded. They can be added
/// together (with `add`) or passed as `initial`; `fold` reduces one to 16 bits. Internally `sum`
/// adds native-endian machine words and byte-swaps once at the end, which RFC 1071 §2(B) allows.
///
/// Chaining `sum` calls (`initial:`) is exact as long as every segment but the last has an even
/// length, because a segment starts a new 16-bit word.
public enum InternetChecksum {
    /// One's complement sum of `count` bytes at `p`, plus `initial`, not folded (see the type's
    /// byte-order convention). An odd final byte is summed as if followed by a zero byte.
    @inlinable
    public static func sum(_ p: UnsafeRawPointer, count: Int, initial: UInt64 = 0) -> UInt64 {
        // Each 8-byte word is added as its two 32-bit halves into 64-bit accumulators, so no
        // carry is lost until 2^31 words (16 GiB) and the loop has no carry chain: the compiler
        // vectorizes it. Summing 32-bit units is exact because 2^32 ≡ 1 (mod 0xFFFF) (RFC 1071
        // §2(C)); `fold` removes the excess.
        var a: UInt64 = 0
        var b: UInt64 = 0
        var i = 0
        if count < 256 {
            // A header or a short datagram — most of what the stack sums: 64-bit words with
            // add-with-carry (the carry folded back at the end), two instructions per word, and
            // none of the vector loop's set-up, which only pays from a few hundred bytes.
            var carries: UInt64 = 0
            while i &+ 8 <= count {
                let (s, o) = a.addingReportingOverflow(p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                a = s
                carries &+= o ? 1 : 0
                i &+= 8
            }
            // 2^64 ≡ 1 (mod 0xFFFF): a carry out of 64 bits is worth one. Halves keep `a` and
            // the carries from overflowing again.
            a = (a & 0xFFFF_FFFF) &+ (a >> 32) &+ carries
        }
        while i &+ 32 <= count {
            let w0 = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let w1 = p.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self)
            let w2 = p.loadUnaligned(fromByteOffset: i &+ 16, as: UInt64.self)
            let w3 = p.loadUnaligned(fromByteOffset: i &+ 24, as: UInt64.self)
            a &+= (w0 & 0xFFFF_FFFF) &+ (w0 >> 32)
            b &+= (w1 & 0xFFFF_FFFF) &+ (w1 >> 32)
            a &+= (w2 & 0xFFFF_FFFF) &+ (w2 >> 32)
            b &+= (w3 & 0xFFFF_FFFF) &+ (w3 >> 32)
            i &+= 32
        }
        while i &+ 8 <= count {
            let w = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            a &+= (w & 0xFFFF_FFFF) &+ (w >> 32)
            i &+= 8
        }
        a &+= b
        if i &+ 4 <= count {
            a &+= UInt64(p.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            i &+= 4
        }
        if i &+ 2 <= count {
            a &+= UInt64(p.loadUnaligned(fromByteOffset: i, as: UInt16.self))
            i &+= 2
        }
        if i < count {
            // The odd byte is the high byte of a big-endian word: native value of bytes [x, 0].
            let byte = UInt16(p.load(fromByteOffset: i, as: UInt8.self))
            a &+= UInt64(UInt16(bigEndian: byte << 8))
        }
        // Native-order words summed → byte-swap the folded result once (RFC 1071 §2(B)).
        let hostOrder = UInt16(bigEndian: fold(a))
        return addWithCarry(initial, UInt64(hostOrder))
    }

    /// Folds a one's complement accumulator to 16 bits with end-around carry; not complemented.
    /// A buffer that includes a correct checksum folds to `0xFFFF`.
    @inlinable
    public static func fold(_ sum: UInt64) -> UInt16 {
        // 2^32 ≡ 2^16 ≡ 1 (mod 0xFFFF): adding the halves preserves the sum.
        var s = (sum & 0xFFFF_FFFF) &+ (sum >> 32)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return UInt16(truncatingIfNeeded: s)
    }

    /// The checksum of `count` bytes at `p` as stored in a header: the complemented fold (RFC 1071).
    /// Compute it with the checksum field zeroed; store it with `.bigEndian`.
    @inlinable
    public static func checksum(_ p: UnsafeRawPointer, count: Int) -> UInt16 {
        ~fold(sum(p, count: count))
    }

    /// The checksum a header view should carry (its `computeChecksum`): `count` bytes at `p`
    /// that include the checksum field, which holds `field` now, plus `initial` (a pseudo-header
    /// sum), with the field counted as zero. Subtracting the stored field (adding its
    /// complement) is the same as zeroing it, and leaves the buffer untouched.
    @inlinable
    static func checksum(_ p: UnsafeRawPointer, count: Int, initial: UInt64 = 0, excluding field: UInt16) -> UInt16 {
        ~fold(add(sum(p, count: count, initial: initial), UInt64(~field)))
    }

    /// Whether `count` bytes at `p` that include their checksum field, plus `initial` (a
    /// pseudo-header sum), fold to 0xFFFF: the receiver's check (RFC 1071 §1), shared by the
    /// header views' `isChecksumValid`.
    @inlinable
    static func isValid(_ p: UnsafeRawPointer, count: Int, initial: UInt64 = 0) -> Bool {
        fold(sum(p, count: count, initial: initial)) == 0xFFFF
    }

    /// Adds two accumulators in one's complement arithmetic.
    @inlinable @inline(__always)
    public static func add(_ x: UInt64, _ y: UInt64) -> UInt64 {
        addWithCarry(x, y)
    }

    @inlinable @inline(__always)
    static func addWithCarry(_ x: UInt64, _ y: UInt64) -> UInt64 {
        let (s, overflow) = x.addingReportingOverflow(y)
        return s &+ (overflow ? 1 : 0)
    }

    /// A checksum after one 16-bit field changed from `old` to `new` (RFC 1624 eqn. 3:
    /// `HC' = ~(~HC + ~m + m')`). All values host-order, as the views read them.
    @inlinable
    public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        let s = UInt32(~checksum) &+ UInt32(~old) &+ UInt32(new)
        return ~fold(UInt64(s))
    }

    /// A checksum after one 32-bit field (an IPv4 address, a TCP sequence number) changed from
    /// `old` to `new`: RFC 1624 eqn. 3 applied to both 16-bit halves. Host-order values.
    @inlinable
    public static func update(_ checksum: UInt16, old: UInt32, new: UInt32) -> UInt16 {
        let oldHalves = UInt32(~UInt16(truncatingIfNeeded: old >> 16)) &+ UInt32(~UInt16(truncatingIfNeeded: old))
        let newHalves = (new >> 16) &+ (new & 0xFFFF)
        let s = UInt64(~checksum) &+ UInt64(oldHalves) &+ UInt64(newHalves)
        return ~fold(s)
    }

    /// A checksum after an IPv4 address changed (NAT rewrites): covers the IPv4 header checksum
    /// and, through the pseudo-header, the TCP and UDP checksums.
    @inlinable
    public static func update(_ checksum: UInt16, old: IPv4Address, new: IPv4Address) -> UInt16 {
        update(checksum, old: old.hostOrder, new: new.hostOrder)
    }

    /// The unfolded sum of the IPv4 pseudo-header (RFC 768, RFC 9293 §3.1): source, destination,
    /// zero, protocol, and `length` (the TCP/UDP header plus payload, in bytes). Pass it as
    /// `initial` to `sum` over the transport header and payload.
    @inlinable
    public static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address,
                                       protocol: IPProtocol, length: Int) -> UInt64 {
        let s = source.hostOrder
        let d = destination.hostOrder
        return UInt64(s >> 16) &+ UInt64(s & 0xFFFF) &+ UInt64(d >> 16) &+ UInt64(d & 0xFFFF)
            &+ UInt64(`protocol`.rawValue) &+ UInt64(truncatingIfNeeded: length)
    }

    /// `pseudoHeaderSum` with the length as a wire field (`udp.length`).
    @inlinable
    public static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address,
                                       protocol: IPProtocol, length: UInt16) -> UInt64 {
        pseudoHeaderSum(source: source, destination: destination, protocol: `protocol`, length: Int(length))
    }
}
