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
        #expect(Set(json.keys) == ["duration_s", "stages", "drops", "snmp", "route_cache", "links", "pools"])
        let pool = try #require((json["pools"] as? [[String: Any]])?.first)
        #expect(Set(pool.keys) == ["name", "buffers", "buffer_size", "in_use", "free"])
        #expect(pool["name"] as? String == "node0" && pool["buffers"] as? Int == lab.pool.capacity)
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

    /// Pools in the snapshot, and `releaseHeldPackets` at shutdown: packets held by a
    /// neighbour waiting for resolution, by reassembly and on lo show as in use; once freed,
    /// the pool is back at its baseline (what is still in use then was lost).
    @Test func heldPacketsShowInThePoolsAndAreFreedAtShutdown() throws {
        let lab = try ForwardLab()
        let before = try #require(lab.stack.poolCounters(workers: [lab.worker]).first)
        // Held: a datagram for an unresolved neighbour, a first fragment, a datagram on lo.
        try lab.stack.apply("route add 198.18.9.0/24 dev eth1")
        lab.deliver(ForwardLab.frame(destination: IPv4Address(198, 18, 9, 9)))
        let request = ForwardLab.echoRequest(to: ForwardLab.routerA, data: Array(repeating: 1, count: 3000))
        lab.deliver(ReassemblyTests.fragments(of: request, sizes: [1480, 1480, 1480]).prefix(1).map { $0 })
        try lab.stack.udp.open(1, local: .any(), receiver: RecordingUDPReceiver())
        try [1, 2, 3].withUnsafeBytes {
            try lab.stack.udp.send($0, from: 1, to: SocketAddress(ForwardLab.routerA, 9), worker: lab.worker)
        }
        _ = lab.sent(on: lab.wire0)
        _ = lab.sent(on: lab.wire1)   // the ARP request
        lab.worker.cache.drainAll()
        let during = try #require(lab.stack.poolCounters(workers: [lab.worker]).first)
        #expect(during.inUse == before.inUse + 3 && during.free == during.buffers - during.inUse)
        #expect(lab.stack.statistics(workers: [lab.worker], duration: 1).runtimeTable(since: .empty)
                    .contains("pool node0: \(during.inUse) in use"))
        #expect(lab.stack.releaseHeldPackets(workers: [lab.worker]) == 3)
        #expect(lab.poolIsAtBaseline)
        lab.stack.udp.close(1)
    }
}
