import DatapathCore
import DatapathWire

/// Counts frames by protocol: what a small packet app built on swift-datapath looks like.
/// The counting is a `PacketTypeHandler`-free loop over a received batch, so it can run on any
/// device — an AF_PACKET interface here, an in-memory device in its tests.
public struct ProtocolCounts: Equatable, Sendable {
    public var ipv4 = 0
    public var arp = 0
    public var other = 0
    public var tcp = 0
    public var udp = 0
    public var icmp = 0
    public var bytes = 0

    public init() {}

    public var total: Int { ipv4 + arp + other }

    /// Counts every frame of `batch` (data at the Ethernet header); does not consume them.
    public mutating func count(_ batch: borrowing PacketBatch) {
        for i in 0..<batch.count {
            let skb = batch[i]
            bytes += skb.length
            guard let frame = EthernetFrame.parse(skb.data, length: skb.length) else {
                other += 1
                continue
            }
            switch frame.etherType {
            case .ipv4:
                ipv4 += 1
                let offset = frame.payloadOffset
                guard let ip = IPv4Header(skb.data + offset, length: skb.length - offset) else { continue }
                switch ip.protocol {
                case .tcp: tcp += 1
                case .udp: udp += 1
                case .icmp: icmp += 1
                default: break
                }
            case .arp: arp += 1
            default: other += 1
            }
        }
    }

    public var summary: String {
        "frames \(total): ipv4 \(ipv4) (tcp \(tcp), udp \(udp), icmp \(icmp)), arp \(arp), other \(other); \(bytes) bytes"
    }
}
