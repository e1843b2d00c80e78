@testable import DatapathCore
import DatapathWire

/// An Ethernet frame as bytes: destination, source, EtherType, then `payload`.
func frameBytes(destination: [UInt8] = [2, 0, 0, 0, 0, 2], source: [UInt8] = [2, 0, 0, 0, 0, 1],
                etherType: UInt16 = 0x0800, payload: [UInt8] = Array(repeating: 0xAB, count: 46)) -> [UInt8] {
    destination + source + [UInt8(etherType >> 8), UInt8(etherType & 0xFF)] + payload
}

extension PoolCache {
    /// An skb holding `bytes`, as if received on `ifindex`.
    func skb(_ bytes: [UInt8], ifindex: Int = 1) -> SKB {
        let skb = allocate()!
        let p = skb.put(bytes.count)!
        p.copyMemory(from: bytes, byteCount: bytes.count)
        skb.inputIfindex = ifindex
        return skb
    }
}

/// A protocol handler that records what it got and frees it.
final class RecordingHandler: PacketTypeHandler, @unchecked Sendable {
    var received: [[UInt8]] = []
    var protocols: [UInt16] = []
    var packetTypes: [PacketType] = []
    var calls = 0
    func receive(_ batch: inout PacketBatch, worker: Worker) {
        calls += 1
        for i in batch.indices {
            received.append(batch[i].bytes)
            protocols.append(batch[i].protocolType)
            packetTypes.append(batch[i].packetType)
        }
        worker.cache.free(&batch)
    }
}

/// Builds a pool, a worker on it and (optionally) a core with a device on ifindex 1.
func makeWorker(capacity: Int = 1024) throws -> (PacketPool, Worker) {
    let pool = try PacketPool(capacity: capacity)
    return (pool, Worker(pool: pool, clock: VirtualClock()))
}
