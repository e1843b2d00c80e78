import DatapathWire
import Testing

@Suite struct InternetChecksumTests {
    @Test func rfc1071ExampleSumsToDDF2() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2; the checksum is its complement.
        withPacket(hex("00 01 f2 03 f4 f5 f6 f7")) { base, length in
            #expect(InternetChecksum.fold(InternetChecksum.sum(base, count: length)) == 0xDDF2)
            #expect(InternetChecksum.checksum(base, count: length) == 0x220D)
        }
    }

    @Test func knownIPv4HeaderChecksumIsB861() {
        withPacket(hex("45 00 00 73 00 00 40 00 40 11 00 00 c0 a8 00 01 c0 a8 00 c7")) { base, length in
            #expect(InternetChecksum.checksum(base, count: length) == 0xB861)
            let ip = IPv4Header(base, length: length)!
            #expect(ip.computeChecksum() == 0xB861)
            ip.fillChecksum()
            #expect(bytes(base + 10, count: 2) == [0xB8, 0x61])
            #expect(ip.isChecksumValid)
            #expect(InternetChecksum.fold(InternetChecksum.sum(base, count: length)) == 0xFFFF)
        }
    }

    @Test func sumMatchesTheReferenceForEveryLengthAndAlignment() {
        var rng = SeededGenerator(seed: 1071)
        for length in 0...300 {
            let data = rng.bytes(length)
            for misalignment in 0..<8 {
                withPacket(data, misalignment: misalignment) { base, count in
                    let folded = InternetChecksum.fold(InternetChecksum.sum(base, count: count))
                    #expect(folded == referenceSum(data), "length \(length) misalignment \(misalignment)")
                }
            }
        }
    }

    @Test func sumOfLongBuffersMatchesTheReference() {
        var rng = SeededGenerator(seed: 9000)
        for length in [1499, 1500, 4096, 9000, 65535] {
            let data = rng.bytes(length)
            withPacket(data) { base, count in
                #expect(InternetChecksum.fold(InternetChecksum.sum(base, count: count)) == referenceSum(data))
            }
        }
        // All 0xFF: every 64-bit add carries, exercising the end-around carry.
        let ones = [UInt8](repeating: 0xFF, count: 1500)
        withPacket(ones) { base, count in
            #expect(InternetChecksum.fold(InternetChecksum.sum(base, count: count)) == 0xFFFF)
        }
    }

    @Test func oddTrailingByteCountsAsTheHighByteOfAWord() {
        withPacket([0xAB]) { base, count in
            #expect(InternetChecksum.fold(InternetChecksum.sum(base, count: count)) == 0xAB00)
        }
        withPacket(hex("01 02 03")) { base, count in
            #expect(InternetChecksum.fold(InternetChecksum.sum(base, count: count)) == 0x0102 + 0x0300)
        }
    }

    @Test func chainedSumsOverEvenSegmentsEqualOneSum() {
        var rng = SeededGenerator(seed: 7)
        let data = rng.bytes(1001)
        withPacket(data) { base, count in
            let whole = InternetChecksum.fold(InternetChecksum.sum(base, count: count))
            let first = InternetChecksum.sum(base, count: 40)
            let second = InternetChecksum.sum(base + 40, count: 600, initial: first)
            let third = InternetChecksum.sum(base + 640, count: count - 640, initial: second)
            #expect(InternetChecksum.fold(third) == whole)
        }
    }

    @Test func initialValueIsAddedInHostOrder() {
        withPacket(hex("12 34")) { base, count in
            #expect(InternetChecksum.fold(InternetChecksum.sum(base, count: count, initial: 0x0001)) == 0x1235)
            #expect(InternetChecksum.fold(InternetChecksum.sum(base, count: 0, initial: 0xFFFF_FFFF_FFFF_FFFF)) == 0xFFFF)
        }
    }

    @Test func foldWrapsCarriesAround() {
        #expect(InternetChecksum.fold(0) == 0)
        #expect(InternetChecksum.fold(0xFFFF) == 0xFFFF)
        #expect(InternetChecksum.fold(0x1_0000) == 0x0001)
        #expect(InternetChecksum.fold(0x1_FFFE) == 0xFFFF)
        #expect(InternetChecksum.fold(0xFFFF_FFFF_FFFF_FFFF) == 0xFFFF)
        #expect(InternetChecksum.fold(0x0001_0000_0000_0000) == 0x0001)
    }

    @Test func incrementalUpdateEqualsFullRecomputeForRandomWords() {
        var rng = SeededGenerator(seed: 1624)
        for _ in 0..<5000 {
            var data = rng.bytes(20)
            data[0] = 0x45  // never all-zero, so +0/−0 cannot differ
            // Any word but version/IHL (which would change the header length) and the checksum.
            let wordIndex = [2, 4, 6, 8, 12, 14, 16, 18].randomElement(using: &rng)!
            let newWord = UInt16.random(in: 0...0xFFFF, using: &rng)
            withPacket(data) { base, count in
                let ip = IPv4Header(unchecked: base)
                ip.fillChecksum()
                let old = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: wordIndex, as: UInt16.self))
                base.storeBytes(of: newWord.bigEndian, toByteOffset: wordIndex, as: UInt16.self)
                let updated = InternetChecksum.update(ip.checksum, old: old, new: newWord)
                #expect(updated == ip.computeChecksum())
            }
        }
    }

    @Test func addressUpdateEqualsFullRecompute() {
        var rng = SeededGenerator(seed: 3022)
        for _ in 0..<3000 {
            let header = ipv4HeaderBytes(source: IPv4Address(hostOrder: rng.next32()),
                                         destination: IPv4Address(hostOrder: rng.next32()),
                                         ttl: UInt8.random(in: 1...255, using: &rng),
                                         payloadLength: Int.random(in: 0...1480, using: &rng))
            let newSource = IPv4Address(hostOrder: rng.next32())
            withPacket(header) { base, count in
                let ip = IPv4Header(base, length: count)!
                let updated = InternetChecksum.update(ip.checksum, old: ip.source, new: newSource)
                let updated32 = InternetChecksum.update(ip.checksum, old: ip.source.hostOrder, new: newSource.hostOrder)
                ip.source = newSource
                #expect(updated == ip.computeChecksum())
                #expect(updated32 == updated)
            }
        }
    }

    @Test func udpChecksumOfAHandBuiltDatagramIs34E2() {
        // 192.168.0.1:1234 → 192.168.0.199:53, payload "hello" (odd length). 0x34e2 was computed
        // independently (RFC 768 pseudo-header, 16-bit big-endian words).
        let datagram = hex("04 d2 00 35 00 0d 00 00") + Array("hello".utf8)
        withPacket(datagram) { base, count in
            let source = IPv4Address(192, 168, 0, 1)
            let destination = IPv4Address(192, 168, 0, 199)
            let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .udp, length: count)
            #expect(~InternetChecksum.fold(InternetChecksum.sum(base, count: count, initial: pseudo)) == 0x34E2)
            let udp = UDPHeader(base, length: count)!
            #expect(udp.computeChecksum(source: source, destination: destination) == 0x34E2)
            udp.fillChecksum(source: source, destination: destination)
            #expect(bytes(base + 6, count: 2) == [0x34, 0xE2])
            #expect(udp.isChecksumValid(source: source, destination: destination))
            let pseudoFromField = InternetChecksum.pseudoHeaderSum(source: source, destination: destination,
                                                                   protocol: .udp, length: udp.length)
            #expect(pseudoFromField == pseudo)
        }
    }

    @Test func pseudoHeaderSumAddsAddressHalvesProtocolAndLength() {
        let sum = InternetChecksum.pseudoHeaderSum(source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2),
                                                   protocol: .tcp, length: 20)
        #expect(sum == 0x0A00 + 0x0001 + 0x0A00 + 0x0002 + 6 + 20)
    }
}

extension SeededGenerator {
    mutating func next32() -> UInt32 { UInt32(truncatingIfNeeded: next()) }
}
