import Datapath
import DatapathCore
import Foundation

/// Per-stage packets and cycles and drops by reason, summed over a group's workers at one
/// moment: what `datapath forward` prints each second (VPP's `show runtime`) and writes as JSON.
struct RuntimeSample {
    var time: Double
    var stages: [StageID: (packets: UInt64, cycles: UInt64)] = [:]
    var drops: [DropReason: UInt64] = [:]

    init(_ group: WorkerGroup, time: Double) {
        self.time = time
        for stage in StageID.all {
            let packets = group.workers.reduce(0) { $0 &+ $1.stages.packets(stage) }
            let cycles = group.workers.reduce(0) { $0 &+ $1.stages.cycles(stage) }
            if packets > 0 { stages[stage] = (packets, cycles) }
        }
        for worker in group.workers {
            for (reason, count) in worker.drops.counted { drops[reason, default: 0] &+= count }
        }
    }

    /// The table for the interval since `previous`: per stage total packets, packets/s and
    /// cycles per packet over the interval; then drops by reason with their rate.
    func table(since previous: RuntimeSample) -> String {
        let interval = max(time - previous.time, 1e-9)
        func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, width - text.count))
            return left ? text + fill : fill + text
        }
        var lines = [pad("Stage", 24, left: true) + pad("Packets", 14) + pad("Packets/s", 13) + pad("Cycles/pkt", 12)]
        for stage in stages.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            let now = stages[stage]!
            let before = previous.stages[stage] ?? (0, 0)
            let packets = now.packets &- before.packets
            let cycles = packets == 0 ? "-" : String(format: "%.1f", Double(now.cycles &- before.cycles) / Double(packets))
            lines.append(pad(stage.name, 24, left: true) + pad(String(now.packets), 14)
                         + pad(String(format: "%.0f", Double(packets) / interval), 13) + pad(cycles, 12))
        }
        if !drops.isEmpty {
            lines.append(pad("Drop reason", 24, left: true) + pad("Packets", 14) + pad("Packets/s", 13))
            for reason in drops.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
                let delta = drops[reason]! &- (previous.drops[reason] ?? 0)
                lines.append(pad(reason.description, 24, left: true) + pad(String(drops[reason]!), 14)
                             + pad(String(format: "%.0f", Double(delta) / interval), 13))
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// The end-of-run report as JSON: duration, stages (packets, cycles/packet), drops by reason,
/// the SNMP counters with their /proc/net/snmp names, the route cache and each link's counters.
func makeStatsJSON(_ sample: RuntimeSample, stack: Stack) throws -> Data {
    var stages: [[String: Any]] = []
    for stage in sample.stages.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
        let value = sample.stages[stage]!
        stages.append(["name": stage.name, "packets": value.packets,
                       "cycles_per_packet": Double(value.cycles) / Double(max(value.packets, 1))])
    }
    var drops: [String: UInt64] = [:]
    for (reason, count) in sample.drops { drops[reason.description] = count }
    var ip: [String: UInt64] = [:]
    for counter in IPStatistics.Counter.allCases { ip[counter.description] = stack.ipv4.statistics[counter] }
    var icmp: [String: UInt64] = [:]
    for counter in ICMPStatistics.Counter.allCases { icmp[counter.description] = stack.ipv4.icmp.statistics[counter] }
    let cache = stack.ipv4.routeCacheCounters
    let links: [[String: Any]] = stack.links.map { link in
        let counters = link.device.stats.snapshot()
        return ["name": link.name, "rx_packets": counters.rxPackets, "rx_bytes": counters.rxBytes,
                "rx_dropped": counters.rxDropped, "tx_packets": counters.txPackets, "tx_bytes": counters.txBytes,
                "tx_dropped": counters.txDropped]
    }
    let report: [String: Any] = [
        "duration_s": sample.time, "stages": stages, "drops": drops, "snmp": ["Ip": ip, "Icmp": icmp],
        "route_cache": ["hits": cache.hits, "misses": cache.misses, "evictions": cache.evictions], "links": links,
    ]
    return try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
}
