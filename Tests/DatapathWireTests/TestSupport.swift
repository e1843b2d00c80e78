import DatapathWire

/// Bytes from hex text: "45 00 00 73" or "45000073".
func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var high: UInt8?
    for character in text where !character.isWhitespace {
        let nibble = UInt8(character.hexDigitValue!)
        if let h = high {
            bytes.append(h << 4 | nibble)
            high = nil
        } else {
            high = nibble
        }
    }
    precondition(high == nil, "odd number of hex digits")
    return bytes
}

/// Runs `body` over a copy of `bytes` in a buffer of exactly that size, placed `misalignment`
/// bytes past an 8-byte boundary so that multi-byte fields are unaligned. Run under
/// `--sanitize=address`, any read past the end is caught.
func withPacket<R>(_ bytes: [UInt8], misalignment: Int = 1,
                   _ body: (UnsafeMutableRawPointer, Int) throws -> R) rethrows -> R {
    let block = UnsafeMutableRawPointer.allocate(byteCount: misalignment + max(bytes.count, 1), alignment: 8)
    defer { block.deallocate() }
    let base = block + misalignment
    bytes.withUnsafeBytes { if let source = $0.baseAddress { base.copyMemory(from: source, byteCount: bytes.count) } }
    return try body(base, bytes.count)
}

/// The bytes of `count` at `base`.
func bytes(_ base: UnsafeRawPointer, count: Int) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: base, count: count))
}

/// A seeded generator (SplitMix64) so that randomized tests are repeatable.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

/// RFC 1071's definition, one big-endian 16-bit word at a time: the reference the fast code is
/// checked against. Returns the folded, uncomplemented sum.
func referenceSum(_ data: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index < data.count {
        let high = UInt32(data[index])
        let low = index + 1 < data.count ? UInt32(data[index + 1]) : 0
        sum += high << 8 | low
        sum = (sum & 0xFFFF) + (sum >> 16)
        index += 2
    }
    return UInt16(sum)
}

/// A 20-byte IPv4 header (no options) with a correct checksum.
func ipv4HeaderBytes(source: IPv4Address = IPv4Address(192, 168, 0, 1),
                     destination: IPv4Address = IPv4Address(192, 168, 0, 199),
                     protocol: IPProtocol = .udp, ttl: UInt8 = 64, payloadLength: Int = 0) -> [UInt8] {
    var header = [UInt8](repeating: 0, count: 20)
    header.withUnsafeMutableBytes {
        IPv4Repr(source: source, destination: destination, protocol: `protocol`, ttl: ttl,
                 payloadLength: payloadLength, identification: 0, dontFragment: true, dscp: 0)
            .emit(to: $0.baseAddress!)
    }
    return header
}
