import Synchronization

/// A tap that writes every frame it sees to a pcap file (the role of tcpdump's AF_PACKET
/// socket on `ptype_all`). Frames are written from the MAC header, whatever stage the skb is
/// at. Thread-safe: workers take a lock once per batch. Stops writing after `limit` frames.
public final class PcapTap: PacketTap, @unchecked Sendable {
    let writer: Lock<PcapWriter>
    let written = Atomic<Int>(0)
    public let limit: Int

    public init(writer: sending PcapWriter, limit: Int = .max) {
        self.writer = Lock(writer)
        self.limit = limit
    }

    /// Frames written so far.
    public var count: Int { written.load(ordering: .relaxed) }

    public func tap(_ batch: borrowing PacketBatch, device: any NetDevice, worker: Worker) {
        let n = batch.count
        let slots = batch.slots
        writer.withLock { writer in
            var done = written.load(ordering: .relaxed)
            for i in 0..<n where done < limit {
                let skb = slots[i]
                let mac = skb.macHeader
                let length = skb.length + (skb.data - mac)
                writer.write(mac, length: length, originalLength: length, timestampNanoseconds: skb.timestamp)
                done += 1
            }
            written.store(done, ordering: .relaxed)
        }
    }

    public func flush() { writer.withLock { $0.flush() } }
    public func close() { writer.withLock { $0.close() } }
}
