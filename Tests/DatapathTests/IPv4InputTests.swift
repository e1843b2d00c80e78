import Testing
import Datapath
import DatapathCore
import DatapathWire

/// ip_rcv on batches built by hand: every drop reason with its counter, and what survivors look like.
@Suite struct IPv4InputTests {
    let pool: PacketPool
    let worker: Worker
    let ipv4 = Stack().ipv4

    init() throws {
        pool = try PacketPool(capacity: 256)
        worker = Worker(pool: pool, clock: VirtualClock())
    }

    /// A UDP-sized IPv4 packet from `source` to `destination`, valid unless `edit` breaks it,
    /// followed by `padding` bytes of link-layer padding. `data` is at the IP header.
    func packet(source: String = "198.18.0.1", destination: String = "198.19.0.1", payload: Int = 8,
                options: [UInt8] = [], padding: Int = 0, packetType: PacketType = .host,
                checksum: ChecksumState = .none, edit: (inout [UInt8]) -> Void = { _ in }) -> SKB {
        let headerLength = 20 + options.count
        var bytes = [UInt8](repeating: 0, count: headerLength + payload + padding)
        bytes.withUnsafeMutableBytes { raw in
            IPv4Repr(source: ip(source), destination: ip(destination), protocol: .udp, ttl: 64,
                     payloadLength: payload, identification: 7, dontFragment: true, dscp: 0).emit(to: raw.baseAddress!)
        }
        if !options.isEmpty {
            bytes[0] = 0x40 | UInt8(headerLength / 4)
            let total = headerLength + payload
            bytes[2] = UInt8(total >> 8)
            bytes[3] = UInt8(total & 0xFF)
            bytes.replaceSubrange(20..<20, with: options)
            bytes.removeLast(options.count)
            bytes[10] = 0
            bytes[11] = 0
            let sum = InternetChecksum.fold(InternetChecksum.sum(bytes, count: headerLength))
            bytes[10] = UInt8(~sum >> 8)
            bytes[11] = UInt8(~sum & 0xFF)
        }
        edit(&bytes)
        let skb = worker.cache.allocate()!
        skb.reserve(64)
        skb.put(bytes.count)!.copyMemory(from: bytes, byteCount: bytes.count)
        skb.packetType = packetType
        skb.checksumState = checksum
        skb.inputIfindex = 1
        return skb
    }

    func run(_ skbs: [SKB]) -> [SKB] {
        var batch = PacketBatch()
        for skb in skbs { batch.append(skb) }
        ipv4.ipRcv(&batch, worker: worker)
        defer { batch.removeAll() }  // handed to the caller
        return batch.indices.map { batch[$0] }
    }

    @Test func aValidPacketPassesTrimmedWithItsHeadersMarked() throws {
        let survivors = run([packet(payload: 8, padding: 18)])
        #expect(survivors.count == 1)
        let skb = try #require(survivors.first)
        #expect(skb.length == 28)
        #expect(skb.transportHeader - skb.networkHeader == 20)
        #expect(ipv4.statistics[.inReceives] == 1)
        #expect(ipv4.statistics[.inHdrErrors] == 0)
        worker.cache.free(skb)
        #expect(pool.inUseCount == 0)
    }

    @Test func everyDropHasItsReasonAndCounter() {
        let cases: [(SKB, DropReason)] = [
            (packet(packetType: .otherHost), .otherHost),
            (packet { $0.removeLast($0.count - 19) }, .packetTooSmall),
            (packet { $0[0] = 0x65 }, .ipHeaderInvalid),
            (packet { $0[0] = 0x44 }, .ipHeaderInvalid),
            (packet { $0[0] = 0x4F }, .ipHeaderInvalid),
            (packet { $0[8] = 9 }, .ipChecksum),
            (packet { $0[3] = 200 }, .ipChecksum),
            (packet(source: "224.0.0.5"), .ipInvalidSource),
            (packet(source: "255.255.255.255"), .ipInvalidSource),
            (packet(source: "0.0.0.0"), .ipInvalidSource),
            (packet(source: "127.0.0.1"), .ipInvalidSource),
            (packet(destination: "0.0.0.0"), .ipInvalidDestination),
            (packet(destination: "127.0.0.1"), .ipInvalidDestination),
            (packet(options: [131, 7, 4, 198, 18, 0, 9, 0]), .ipSourceRouted),
            (packet(options: [7, 12, 4, 0, 0, 0, 0, 0]), .ipHeaderInvalid),
        ]
        // Through the whole receive path: martians are refused by routing (on a cache miss),
        // the rest by ip_rcv.
        for (skb, reason) in cases {
            let before = worker.drops[reason]
            var batch = PacketBatch()
            batch.append(skb)
            ipv4.receive(&batch, worker: worker)
            #expect(worker.drops[reason] == before + 1, "\(reason)")
        }
        // A total length past the frame: truncated, after a header that checks out.
        var truncated = packet(payload: 8)
        let total = truncated.data
        total.storeBytes(of: UInt16(60).bigEndian, toByteOffset: 2, as: UInt16.self)
        IPv4Header(unchecked: total).checksum = 0
        IPv4Header(unchecked: total).checksum = IPv4Header(unchecked: total).computeChecksum()
        #expect(run([truncated]).isEmpty)
        truncated = packet(payload: 8) { $0[2] = 0; $0[3] = 19 }
        #expect(run([truncated]).isEmpty)   // checksum now wrong too: checksum first, as Linux

        #expect(ipv4.statistics[.inReceives] == 16)
        #expect(ipv4.statistics[.inTruncatedPkts] == 1)
        #expect(ipv4.statistics[.inCsumErrors] == 3)
        #expect(ipv4.statistics[.inAddrErrors] == 2)
        #expect(ipv4.statistics[.inHdrErrors] == 1 + 3 + 3 + 1)
        #expect(pool.inUseCount == 0)
    }

    /// The ring's "checksum valid" (CHECKSUM_UNNECESSARY) is about the transport checksum:
    /// the IPv4 header's is verified regardless, as Linux's `ip_rcv_core` does (the fuzzer
    /// found a forwarded packet keeping a bad header checksum when it was trusted).
    @Test func wellFormedOptionsPassAndTheHeaderChecksumIsVerifiedWhateverTheRingSays() {
        let recordRoute: [UInt8] = [7, 7, 4, 0, 0, 0, 0, 1]   // RR with room for one address, NOP pad
        let survivors = run([packet(options: recordRoute), packet(checksum: .unnecessary) { $0[10] ^= 0xFF }])
        #expect(survivors.count == 1)
        #expect(ipv4.statistics[.inCsumErrors] == 1)
        #expect(survivors.first.map { $0.transportHeader - $0.networkHeader } == 28)
        for skb in survivors { worker.cache.free(skb) }
        #expect(pool.inUseCount == 0)
    }

    @Test func theSNMPLinesReadLikeProcNetSnmp() {
        for skb in run([packet(), packet()]) { worker.cache.free(skb) }
        let lines = ipv4.statistics.snmpLines().split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("Ip: InReceives InHdrErrors InAddrErrors ForwDatagrams"))
        #expect(lines[1].hasPrefix("Ip: 2 0 0 0"))
        #expect(lines[2] == "IpExt: InNoRoutes InTruncatedPkts InCsumErrors")
    }

    @Test func randomBytesAreDroppedWithReasonsAndNothingLeaks() {
        var random = SplitMix64(seed: 4)
        var survivors = 0
        for round in 0..<4000 {
            let length = Int(random.next() % 80)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if length > 0 && round % 2 == 0 { bytes[0] = 0x40 | (bytes[0] & 0x0F) }
            let skb = worker.cache.allocate()!
            skb.reserve(64)
            if length > 0 { skb.put(length)!.copyMemory(from: bytes, byteCount: length) }
            for s in run([skb]) {
                survivors += 1
                worker.cache.free(s)
            }
        }
        let dropped = worker.drops.total
        #expect(Int(dropped) + survivors == 4000)
        #expect(pool.inUseCount == 0)
    }
}
