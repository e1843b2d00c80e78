import Testing
@testable import DatapathCore
import DatapathWire

/// skb_gso_segment in software: TCP and UDP super-packets become wire-sized packets with every
/// header a sender would have written.
@Suite struct GSOSegmentTests {
    /// Ethernet + IPv4 (ID 7, DF) + UDP header + `payload` bytes counting up.
    static func udpFrame(payload: Int) -> [UInt8] {
        var ip = [UInt8](repeating: 0, count: 20)
        ip.withUnsafeMutableBytes { raw in
            IPv4Repr(source: IPv4Address(198, 18, 1, 2), destination: IPv4Address(198, 18, 2, 2), protocol: .udp,
                     ttl: 64, payloadLength: 8 + payload, identification: 7, dontFragment: true, dscp: 0)
                .emit(to: raw.baseAddress!)
        }
        let length = 8 + payload
        let udp: [UInt8] = [0x13, 0x88, 0x00, 0x09, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0]
        return frameBytes(payload: ip + udp + (0..<payload).map { UInt8(truncatingIfNeeded: $0) })
    }

    struct Segment {
        let bytes: [UInt8]
        var ip: ArraySlice<UInt8> { bytes[14...] }
        var totalLength: Int { Int(bytes[16]) << 8 | Int(bytes[17]) }
        var identification: Int { Int(bytes[18]) << 8 | Int(bytes[19]) }
        var transport: [UInt8] { Array(bytes[34..<(14 + totalLength)]) }
        var ipChecksumIsValid: Bool { InternetChecksum.fold(InternetChecksum.sum(Array(bytes[14..<34]), count: 20)) == 0xFFFF }
        var transportChecksumIsValid: Bool {
            let pseudo = InternetChecksum.pseudoHeaderSum(source: IPv4Address(198, 18, 1, 2),
                                                          destination: IPv4Address(198, 18, 2, 2),
                                                          protocol: IPProtocol(rawValue: bytes[23]),
                                                          length: transport.count)
            return InternetChecksum.fold(InternetChecksum.sum(transport, count: transport.count, initial: pseudo)) == 0xFFFF
        }
    }

    /// Segments `frame` (GSO `type`, `size`), returning them as bytes and freeing them.
    func segment(_ frame: [UInt8], type: GSOType, size: Int, worker: Worker,
                 prepare: (SKB) -> Void = { _ in }) -> [Segment]? {
        let skb = worker.cache.skb(frame)
        skb.gsoType = type
        skb.gsoSize = size
        skb.outputIfindex = 3
        skb.mark = 0x55
        prepare(skb)
        var out = PacketBatch()
        guard skbGSOSegment(skb, networkOffset: 14, into: &out, worker: worker) else {
            worker.cache.free(skb)
            return nil
        }
        #expect(out.indices.allSatisfy { out[$0].outputIfindex == 3 && out[$0].mark == 0x55 && !out[$0].isGSO })
        let segments = out.indices.map { Segment(bytes: out[$0].bytes) }
        worker.cache.free(&out)
        return segments
    }

    @Test func aTCPSuperPacketBecomesSegmentsWithTheirOwnSequenceFlagsAndChecksums() throws {
        let (pool, worker) = try makeWorker()
        // PSH, FIN and CWR set on the super-packet; sequence 0xFFFFFF00 wraps.
        let frame = VirtioNetHeaderTests.tcpFrame(payload: 1800)
        let segments = try #require(segment(frame, type: .tcpv4, size: 700, worker: worker) { skb in
            skb.data.storeBytes(of: UInt32(0xFFFF_FF00).bigEndian, toByteOffset: 38, as: UInt32.self)
            skb.data.storeBytes(of: UInt8(0x80 | 0x08 | 0x01 | 0x10), toByteOffset: 47, as: UInt8.self)
        })
        #expect(segments.map(\.totalLength) == [740, 740, 440])
        #expect(segments.map(\.identification) == [7, 8, 9])
        #expect(segments.allSatisfy { $0.ipChecksumIsValid && $0.transportChecksumIsValid })
        let sequences = segments.map { $0.transport[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
        #expect(sequences == [0xFFFF_FF00, 0xFFFF_FF00 &+ 700, 0xFFFF_FF00 &+ 1400])
        // CWR on the first only; FIN and PSH on the last only; ACK on all.
        #expect(segments.map { $0.transport[13] } == [0x90, 0x10, 0x19])
        #expect(Array(segments.map { $0.transport.dropFirst(20) }.joined()) == Array(frame[54...]))
        #expect(pool.inUseCount == 0)
    }

    @Test func aUDPSuperPacketBecomesDatagrams() throws {
        let (pool, worker) = try makeWorker()
        let frame = Self.udpFrame(payload: 1800)
        let segments = try #require(segment(frame, type: .udpL4, size: 700, worker: worker))
        #expect(segments.map(\.totalLength) == [728, 728, 428])
        #expect(segments.map { Int($0.transport[4]) << 8 | Int($0.transport[5]) } == [708, 708, 408])
        #expect(segments.allSatisfy { $0.ipChecksumIsValid && $0.transportChecksumIsValid })
        #expect(Array(segments.map { $0.transport.dropFirst(8) }.joined()) == Array(frame[42...]))
        #expect(pool.inUseCount == 0)
    }

    /// What cannot be segmented is left alone: a type that does not match the protocol, an
    /// obsolete UFO packet, a truncated header, more segments than the batch holds.
    @Test func whatCannotBeSegmentedIsLeftWhole() throws {
        let (pool, worker) = try makeWorker()
        #expect(segment(Self.udpFrame(payload: 2000), type: .tcpv4, size: 1000, worker: worker) == nil)
        #expect(segment(Self.udpFrame(payload: 2000), type: .udp, size: 1000, worker: worker) == nil)
        #expect(segment(Array(Self.udpFrame(payload: 100).prefix(30)), type: .udpL4, size: 10, worker: worker) == nil)
        #expect(segment(Self.udpFrame(payload: 1800), type: .udpL4, size: 4, worker: worker) == nil)  // 450 > 256
        #expect(pool.inUseCount == 0)
    }

    /// Segments larger than a pool buffer: nothing is made, nothing leaks, the packet stays
    /// whole (it comes from a pool of larger buffers).
    @Test func segmentsLargerThanAPoolBufferAreNotMade() throws {
        let (pool, worker) = try makeWorker()
        let largePool = try PacketPool(capacity: 4, bufferSize: 8192)
        let large = Worker(pool: largePool)
        let skb = large.cache.skb(Self.udpFrame(payload: 6000))
        skb.gsoType = .udpL4
        skb.gsoSize = 3000
        var out = PacketBatch()
        #expect(!skbGSOSegment(skb, networkOffset: 14, into: &out, worker: worker))
        #expect(out.isEmpty && pool.inUseCount == 0 && skb.length == 14 + 20 + 8 + 6000)
        large.cache.free(skb)
        #expect(largePool.inUseCount == 0)
    }
}

/// dev_queue_xmit's `validate_xmit_skb`: a GSO frame for a device that does not segment leaves
/// as its segments, in order with the frames around it; one that does segment gets it whole.
@Suite struct GSOTransmitTests {
    func transmit(toGSODevice: Bool) throws -> (segments: [[UInt8]], inUse: Int) {
        let (pool, worker) = try makeWorker()
        let core = NetCore()
        let (eth0, wire0) = MemoryDevice.pair("eth0", MACAddress(2, 0, 0, 0, 0, 1), "wire0", MACAddress(2, 0, 0, 0, 0, 2))
        eth0.supportsGSO = toGSODevice
        core.register(eth0)
        core.register(wire0)
        var batch = PacketBatch()
        let before = worker.cache.skb(frameBytes(payload: [UInt8](repeating: 1, count: 46)))
        let gso = worker.cache.skb(VirtioNetHeaderTests.tcpFrame(payload: 1500))
        gso.gsoType = .tcpv4
        gso.gsoSize = 600
        gso.head.pointee.networkOffset = gso.head.pointee.macOffset &+ 14  // as eth_type_trans leaves it
        let after = worker.cache.skb(frameBytes(payload: [UInt8](repeating: 2, count: 46)))
        batch.append(before); batch.append(gso); batch.append(after)
        core.devQueueXmit(&batch, device: eth0, worker: worker)
        var received: [[UInt8]] = []
        while wire0.receive(queue: 0, into: &batch, max: 64, worker: worker) > 0 {
            received += batch.indices.map { batch[$0].bytes }
            worker.cache.free(&batch)
        }
        return (received, pool.inUseCount)
    }

    @Test func aDeviceWithoutGSOGetsTheSegmentsInOrder() throws {
        let (frames, inUse) = try transmit(toGSODevice: false)
        #expect(frames.map(\.count) == [60, 14 + 40 + 600, 14 + 40 + 600, 14 + 40 + 300, 60])
        #expect(frames.first?[14] == 1 && frames.last?[14] == 2)
        #expect(inUse == 0)
    }

    @Test func aDeviceWithGSOGetsThePacketWhole() throws {
        let (frames, inUse) = try transmit(toGSODevice: true)
        #expect(frames.map(\.count) == [60, 14 + 40 + 1500, 60])
        #expect(inUse == 0)
    }
}
