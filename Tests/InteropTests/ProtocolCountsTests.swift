import Testing
@testable import ProtocolCounter
import DatapathCore
import DatapathWire

/// The example's counting logic on an in-memory batch (no root needed).
@Suite struct ProtocolCountsTests {
    @Test func countsEachProtocolOnce() throws {
        let pool = try PacketPool(capacity: 64)
        let worker = Worker(pool: pool)
        var batch = PacketBatch()
        func add(_ bytes: [UInt8]) {
            let skb = worker.cache.allocate()!
            skb.put(bytes.count)!.copyMemory(from: bytes, byteCount: bytes.count)
            batch.append(skb)
        }
        let ethernet: (UInt16) -> [UInt8] = { [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let ip: (UInt8) -> [UInt8] = { [0x45, 0, 0, 40, 0, 0, 0, 0, 64, $0, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2] + Array(repeating: 0, count: 20) }
        add(ethernet(0x0800) + ip(6))
        add(ethernet(0x0800) + ip(17))
        add(ethernet(0x0800) + ip(17))
        add(ethernet(0x0800) + ip(1))
        add(ethernet(0x0806) + Array(repeating: 0, count: 28))
        add(ethernet(0x86DD) + Array(repeating: 0, count: 40))
        add([1, 2, 3])  // a runt: not even an Ethernet header
        var counts = ProtocolCounts()
        counts.count(batch)
        #expect(counts.ipv4 == 4 && counts.tcp == 1 && counts.udp == 2 && counts.icmp == 1)
        #expect(counts.arp == 1)
        #expect(counts.other == 2)
        #expect(counts.total == 7)
        worker.cache.free(&batch)
        #expect(pool.inUseCount == 0)
    }
}
