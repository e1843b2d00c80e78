import Foundation
import Testing
import Datapath
import DatapathCore
import DatapathWire

/// One Codable snapshot that the live table, the exit report and `--stats-json` render from.
@Suite struct StackStatisticsTests {
    @Test func aSnapshotCountsWhatTheStackDidAndEncodesWithTheDocumentedKeys() throws {
        let lab = try ForwardLab()
        lab.stack.ipv4.fastPath = false
        lab.deliver((0..<5).map { _ in ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1)) }
                    + [ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1), ttl: 1)])
        _ = lab.sent(on: lab.wire1)
        _ = lab.sent(on: lab.wire0)
        let stats = lab.stack.statistics(workers: [lab.worker], duration: 2)
        #expect(stats.snmp.ip["ForwDatagrams"] == 5 && stats.snmp.ip["InReceives"] == 6)
        #expect(stats.snmp.icmp["OutTimeExcds"] == 1)
        #expect(stats.drops["IP_TTL_EXPIRED"] == 1)
        #expect(stats.stages.contains { $0.name == "ip-forward" && $0.packets == 6 })
        #expect(stats.links.map(\.name) == ["lo", "eth0", "eth1"])
        #expect(stats.links[2].txPackets == 5)

        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = try encoder.encode(stats)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(json.keys) == ["duration_s", "stages", "drops", "snmp", "route_cache", "links"])
        let stage = try #require((json["stages"] as? [[String: Any]])?.first)
        #expect(Set(stage.keys) == ["name", "packets", "cycles", "cycles_per_packet"])
        #expect((json["snmp"] as? [String: Any])?.keys.sorted() == ["Icmp", "Ip", "Udp"])
        #expect(((json["links"] as? [[String: Any]])?[1]["rx_packets"] as? Int) == 6)
        #expect(try JSONDecoder().decode(StackStatistics.self, from: data) == stats)
    }

    @Test func theRuntimeTableShowsRatesOverTheIntervalSinceThePreviousSnapshot() throws {
        let lab = try ForwardLab()
        lab.stack.ipv4.fastPath = false
        lab.deliver((0..<4).map { _ in ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1)) })
        let first = lab.stack.statistics(workers: [lab.worker], duration: 1)
        lab.deliver((0..<6).map { _ in ForwardLab.frame(destination: IPv4Address(198, 19, 0, 1)) })
        let second = lab.stack.statistics(workers: [lab.worker], duration: 3)
        _ = lab.sent(on: lab.wire1)
        let table = second.runtimeTable(since: first).split(separator: "\n")
        #expect(table.first?.hasPrefix("Stage") == true)
        let forward = try #require(table.first { $0.hasPrefix("ip-forward ") })
        let columns = forward.split(separator: " ")
        #expect(columns[1] == "10" && columns[2] == "3")   // 10 in all, 6 over 2 s
        let whole = second.runtimeTable(since: .empty)
        #expect(whole.contains("ip-forward"))
    }
}
