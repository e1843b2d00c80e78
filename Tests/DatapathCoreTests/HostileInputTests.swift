import Testing
@testable import DatapathCore
import DatapathWire

/// Random and malformed frames through the receive path: every frame is delivered or dropped
/// with a counted reason, nothing crashes, and the pool returns to its baseline.
@Suite struct HostileInputTests {
    /// Parses a frame the way a packet app would, with every view's checked constructor.
    final class ParsingHandler: PacketTypeHandler, @unchecked Sendable {
        var parsed = 0
        func receive(_ batch: inout PacketBatch, worker: Worker) {
            for i in batch.indices {
                let skb = batch[i]
                if let ip = IPv4Header(skb.data, length: skb.length) {
                    _ = ip.isChecksumValid
                    _ = ip.isTotalLengthValid(bufferLength: skb.length)
                    for option in ip.options { if case .malformed = option { break } }
                    let rest = skb.length - ip.headerLength
                    let payload = skb.data + ip.headerLength
                    if let tcp = TCPHeader(payload, length: rest) {
                        for option in tcp.options { if case .malformed = option { break } }
                    }
                    _ = UDPHeader(payload, length: rest)?.isLengthValid(bufferLength: rest)
                    _ = ICMPHeader(payload, length: rest)?.type
                    parsed += 1
                } else if let arp = ARPPacket(skb.data, length: skb.length) {
                    _ = arp.operation
                }
            }
            worker.cache.free(&batch)
        }
    }

    @Test func randomFramesAreDeliveredOrCountedAndNothingLeaks() throws {
        let (pool, worker) = try makeWorker(capacity: 4096)
        let core = NetCore()
        let device = MemoryDevice(name: "fuzz0", macAddress: MACAddress(2, 0, 0, 0, 0, 2))
        core.register(device)
        let handler = ParsingHandler()
        core.addPacketType(.ipv4, handler)
        core.addPacketType(.arp, handler)
        var rng = SplitMix64(seed: 2026)
        var batch = PacketBatch()
        var sent = 0
        for round in 0..<200 {
            for _ in 0..<64 {
                let length = Int.random(in: 0...200, using: &rng)
                var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                // Bias half the frames to IPv4/ARP with a plausible first byte, so the views'
                // length and option checks get exercised rather than only the EtherType switch.
                if length >= 15, round % 2 == 0 {
                    bytes[12] = 0x08
                    bytes[13] = Bool.random(using: &rng) ? 0x00 : 0x06
                    bytes[14] = 0x40 | UInt8.random(in: 0...15, using: &rng)
                }
                batch.append(worker.cache.skb(bytes, ifindex: device.ifindex))
                sent += 1
            }
            core.netifReceiveSkb(&batch, worker: worker)
        }
        let dropped = worker.drops[.packetTooSmall] + worker.drops[.unhandledProtocol]
        #expect(worker.stages.packets(core.receiveStage) == UInt64(sent))
        #expect(dropped > 0 && handler.parsed > 0)
        #expect(pool.inUseCount == 0)
    }
}
