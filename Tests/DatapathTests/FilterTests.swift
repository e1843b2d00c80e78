import Testing
import Datapath
import DatapathCore
import DatapathWire

/// The filter table: the command language, first match wins, each match and verdict, counters.
@Suite struct FilterTests {
    static func udp(sourcePort: UInt16 = 40000, port: UInt16) -> [UInt8] {
        [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(port >> 8), UInt8(port & 0xFF), 0, 16, 0, 0]
            + Array(repeating: 0xEE, count: 8)
    }

    @Test func rulesParseAndPrintBack() throws {
        let lines = try ConfigParser.parse("""
            filter add forward iif eth0 src 198.18.1.0/24 dst 198.19.0.0/16 proto udp sport 1000-2000 dport 9 drop
            filter add input proto icmp icmp-type echo-request accept
            filter add output oif eth1 proto 47 fragment reject with icmp-admin-prohibited
            filter add forward dst 198.19.1.1 reject
            filter list
            """)
        let stack = Stack()
        try stack.addDevice(MemoryDevice(name: "eth0", macAddress: mac(1)))
        try stack.addDevice(MemoryDevice(name: "eth1", macAddress: mac(2)))
        for line in lines {
            if case .addFilterRule(let spec) = line.command { try stack.addFilterRule(spec) }
        }
        #expect(lines.last?.command == .listFilter)
        #expect(stack.filter.allRules.map(\.description) == [
            "filter add input proto icmp icmp-type 8 accept",
            "filter add forward iif eth0 src 198.18.1.0/24 dst 198.19.0.0/16 proto udp sport 1000-2000 dport 9 drop",
            "filter add forward dst 198.19.1.1/32 reject",
            "filter add output oif eth1 proto 47 fragment reject with icmp-admin-prohibited",
        ])
    }

    @Test(arguments: [
        ("filter add prerouting drop", "line 1: expected one of 'input', 'forward', 'output', got 'prerouting'"),
        ("filter add forward dport 9 drop", "line 1: expected 'proto tcp', 'proto udp' or 'proto sctp' before 'dport', got 'dport'"),
        ("filter add input oif eth0 drop", "line 1: expected a match other than 'oif' on the input hook, got 'oif'"),
        ("filter add forward proto udp", "line 1: expected one of 'iif', 'oif', 'src', 'dst', 'sport', 'dport', 'icmp-type', 'fragment', 'accept', 'drop', 'reject', got end of line"),
        ("filter add forward proto udp dport 9-1 drop", "line 1: expected a port or port range (N or N-M), got '9-1'"),
        ("filter add forward drop now", "line 1: expected end of line, got 'now'"),
    ])
    func badRulesSayWhatWasExpected(line: String, message: String) {
        #expect(throws: ConfigError.self) { try ConfigParser.parse(line) }
        do { _ = try ConfigParser.parse(line) } catch { #expect(error.description == message) }
    }

    @Test func aDropRuleDropsWhatItNamesCountsItAndPassesTheRest() throws {
        let lab = try ForwardLab()
        try lab.stack.apply("filter add forward proto udp dport 9 drop")
        let dropped = ForwardLab.frame(destination: ip("198.19.1.1"), payload: FilterTests.udp(port: 9))
        let passed = ForwardLab.frame(destination: ip("198.19.1.1"), payload: FilterTests.udp(port: 10))
        lab.deliver([dropped, passed, dropped])
        #expect(lab.sent(on: lab.wire1).map { $0[37] } == [10])
        #expect(lab.drops(.netfilterDrop) == 2)
        let rule = try #require(lab.stack.filter.allRules.first)
        #expect(rule.packets == 2 && rule.bytes == UInt64(2 * (dropped.count - 14)))
        #expect(lab.stack.showFilter().contains("filter add forward proto udp dport 9 drop"))
        #expect(lab.poolIsAtBaseline)
    }

    @Test func theFirstMatchWinsAndEachMatchNarrows() throws {
        let lab = try ForwardLab()
        try lab.stack.apply("""
            filter add forward src 198.18.1.2 dst 198.19.5.0/24 accept
            filter add forward iif eth0 proto udp sport 100-200 drop
            filter add forward oif eth1 proto icmp icmp-type echo-request drop
            filter add forward fragment drop
            """)
        var laterFragment = ForwardLab.frame(destination: ip("198.19.9.9"), payload: Array(repeating: 1, count: 16),
                                             dontFragment: false)
        laterFragment[20] = 0x00
        laterFragment[21] = 0x08
        laterFragment[24] = 0
        laterFragment[25] = 0
        let sum = ~InternetChecksum.fold(InternetChecksum.sum(Array(laterFragment[14..<34]), count: 20))
        laterFragment[24] = UInt8(sum >> 8)
        laterFragment[25] = UInt8(sum & 0xFF)
        lab.deliver([
            ForwardLab.frame(destination: ip("198.19.5.5"), payload: FilterTests.udp(sourcePort: 150, port: 9)), // accept
            ForwardLab.frame(destination: ip("198.19.6.6"), payload: FilterTests.udp(sourcePort: 150, port: 9)), // drop
            ForwardLab.frame(destination: ip("198.19.6.6"), payload: FilterTests.udp(sourcePort: 250, port: 9)), // pass
            ForwardLab.frame(destination: ip("198.19.6.6"), protocol: .icmp, payload: [8, 0, 0, 0, 0, 0, 0, 0]), // drop
            ForwardLab.frame(destination: ip("198.19.6.6"), protocol: .icmp, payload: [0, 0, 0, 0, 0, 0, 0, 0]), // pass
            laterFragment, // drop
        ])
        let out = lab.sent(on: lab.wire1).map(SentIPv4.init)
        #expect(out.map { $0.destination } == [ip("198.19.5.5"), ip("198.19.6.6"), ip("198.19.6.6")])
        #expect(lab.stack.filter.allRules.map(\.packets) == [1, 1, 1, 1])
        #expect(lab.drops(.netfilterDrop) == 3)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func rejectAnswersWithTheICMPCodeAndInputRulesGuardTheRouterItself() throws {
        let lab = try ForwardLab()
        try lab.stack.apply("""
            filter add forward proto udp dport 7 reject
            filter add forward proto udp dport 8 reject with icmp-host-prohibited
            filter add input proto icmp icmp-type echo-request drop
            """)
        lab.deliver([ForwardLab.frame(destination: ip("198.19.1.1"), payload: FilterTests.udp(port: 7)),
                     ForwardLab.frame(destination: ip("198.19.1.1"), payload: FilterTests.udp(port: 8)),
                     ForwardLab.echoRequest(to: ForwardLab.routerA)])
        let errors = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(errors.map { Array($0.payload.prefix(2)) } == [[3, 3], [3, 10]])
        #expect(errors.allSatisfy { $0.source == ForwardLab.routerA && $0.destination == ForwardLab.hostA })
        #expect(lab.sent(on: lab.wire1).isEmpty)
        #expect(lab.stack.ipv4.icmp.statistics[.inEchos] == 0)
        #expect(lab.drops(.netfilterDrop) == 3)
        #expect(lab.poolIsAtBaseline)
    }
}
