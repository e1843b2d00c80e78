import Testing
import Datapath
import DatapathCore
import DatapathWire

/// ECMP multipath routes (`route add P nexthop via G1 weight W nexthop via G2 …`): the
/// language, `route show`, and flows spread over the next hops by hash as Linux's
/// `fib_select_multipath` does, per `fib_multipath_hash_policy`.
@Suite struct MultipathTests {
    static let second = IPv4Address(198, 18, 2, 3)
    static let secondMAC = mac(0xB3)

    /// ForwardLab with a second neighbour on eth1 and 198.20.0.0/16 over both next hops.
    static func lab(weights: (Int, Int) = (1, 1), fastPath: Bool = true) throws -> ForwardLab {
        let lab = try ForwardLab()
        lab.stack.ipv4.fastPath = fastPath
        try lab.stack.apply("""
            neigh add 198.18.2.3 lladdr \(secondMAC) dev eth1
            route add 198.20.0.0/16 nexthop via 198.18.2.2 weight \(weights.0) nexthop via 198.18.2.3 dev eth1 weight \(weights.1)
            """)
        return lab
    }

    /// A UDP frame from `source` to `destination` with the given ports.
    static func flow(_ source: IPv4Address, _ destination: IPv4Address, ports: (UInt16, UInt16) = (4000, 53)) -> [UInt8] {
        let payload: [UInt8] = [UInt8(ports.0 >> 8), UInt8(ports.0 & 0xFF), UInt8(ports.1 >> 8), UInt8(ports.1 & 0xFF),
                                0, 12, 0, 0, 1, 2, 3, 4]
        return ForwardLab.frame(source: source, destination: destination, payload: payload)
    }

    /// Delivers `frames` one at a time and returns, per frame, the next hop it left for (0:
    /// host B, 1: the second neighbour, nil: nothing left).
    static func nextHops(_ lab: ForwardLab, _ frames: [[UInt8]]) -> [Int?] {
        frames.map { frame in
            lab.deliver(frame)
            let sent = lab.sent(on: lab.wire1).map { SentIPv4($0).destinationMAC }
            guard sent.count == 1 else { return nil }
            return sent[0] == ForwardLab.hostBMAC ? 0 : sent[0] == secondMAC ? 1 : nil
        }
    }

    @Test func theLanguageTakesNexthopsAndRouteShowListsThem() throws {
        let lab = try Self.lab(weights: (3, 1))
        #expect(lab.stack.showRoutes().contains(
            "198.20.0.0/16\n\tnexthop via 198.18.2.2 dev eth1 weight 3\n\tnexthop via 198.18.2.3 dev eth1 weight 1"))
        let route = try #require(lab.stack.fib.routes.first { $0.prefix == IPv4Prefix("198.20.0.0/16")! })
        #expect(route.nexthops.map(\.weight) == [3, 1] && route.gateway == ForwardLab.hostB)
        // One next hop is a plain route; errors name the word.
        try lab.stack.apply("route add 198.21.0.0/16 nexthop via 198.18.2.2")
        #expect(lab.stack.showRoutes().contains("198.21.0.0/16 via 198.18.2.2 dev eth1"))
        for (line, word, expected) in [
            ("route add 198.22.0.0/16 nexthop weight 2", "end of line", "'via GATEWAY' or 'dev DEVICE'"),
            ("route add 198.22.0.0/16 nexthop via 198.18.2.2 weight 0", "0", "a weight (1-256)"),
            ("route add 198.22.0.0/16 nexthop via 198.18.2.2 via 198.18.2.3", "via",
             "'nexthop', 'metric', 'mtu' or end of line (one 'via', 'dev' and 'weight' per next hop)"),
            ("route add 198.22.0.0/16 via 198.18.2.2 nexthop via 198.18.2.3", "nexthop", "one of 'via', 'dev', 'metric', 'mtu'"),
        ] {
            #expect(throws: (any Error).self, "\(line)") { try lab.stack.apply(line) }
            do { try lab.stack.apply(line) } catch {
                #expect("\(error)".contains(expected) && "\(error)".contains(word), "\(line): \(error)")
            }
        }
        // A next hop's gateway must be connected: the whole line is refused.
        #expect(throws: (any Error).self) {
            try lab.stack.apply("route add 198.22.0.0/16 nexthop via 198.18.2.2 nexthop via 198.18.77.1")
        }
        #expect(!lab.stack.showRoutes().contains("198.22.0.0/16"))
    }

    /// Policy 0: flows (source, destination) spread over both next hops in proportion to the
    /// weights, each flow always on the same one — on the fast path and the staged path alike,
    /// whatever the ports.
    @Test func flowsSpreadByWeightAndStayOnTheirNextHop() throws {
        for fastPath in [true, false] {
            let lab = try Self.lab(weights: (3, 1), fastPath: fastPath)
            var flows: [[UInt8]] = []
            for n in 0..<400 {
                let source = IPv4Address(198, 18, 1, UInt8(2 + n % 200))
                let destination = IPv4Address(198, 20, UInt8(n / 200), UInt8(n % 251))
                flows.append(Self.flow(source, destination))
            }
            let first = Self.nextHops(lab, flows)
            #expect(first.allSatisfy { $0 != nil })
            let share = Double(first.filter { $0 == 0 }.count) / Double(first.count)
            #expect(share > 0.65 && share < 0.85, "weight 3 of 4 got \(share)")
            #expect(Self.nextHops(lab, flows) == first)   // the same flows, the same next hops
            // Other ports of one flow: the same next hop under policy 0.
            let ports = (0..<20).map { Self.flow(ForwardLab.hostA, IPv4Address(198, 20, 9, 9), ports: (UInt16(1000 + $0), 53)) }
            #expect(Set(Self.nextHops(lab, ports)).count == 1)
            #expect(lab.poolIsAtBaseline)
        }
    }

    /// Policy 1 adds the protocol and ports: one address pair's connections spread over the
    /// next hops, each connection staying on its own; a fragment hashes on the addresses.
    @Test func policyOneHashesThePorts() throws {
        let lab = try Self.lab()
        lab.stack.ipv4.settings.multipathHashPolicy = 1
        let connections = (0..<64).map { Self.flow(ForwardLab.hostA, IPv4Address(198, 20, 9, 9), ports: (UInt16(1000 + $0), 53)) }
        let first = Self.nextHops(lab, connections)
        #expect(Set(first) == [0, 1])
        #expect(Self.nextHops(lab, connections) == first)
        #expect(lab.poolIsAtBaseline)
    }

    /// A next hop whose device goes away leaves the route with the other (Linux:
    /// `fib_sync_down_dev`); the last one takes the route with it.
    @Test func removingADevicesRoutesKeepsTheOtherNexthops() throws {
        let lab = try ForwardLab()
        try lab.stack.apply("route add 198.20.0.0/16 nexthop via 198.18.1.2 nexthop via 198.18.2.2")
        let eth0 = lab.stack.link(named: "eth0")!.device.ifindex
        let eth1 = lab.stack.link(named: "eth1")!.device.ifindex
        lab.stack.fib.removeRoutes(ifindex: eth0)
        let route = try #require(lab.stack.fib.routes.first { $0.prefix == IPv4Prefix("198.20.0.0/16")! })
        #expect(route.nexthops.isEmpty && route.gateway == ForwardLab.hostB && route.ifindex == eth1)
        lab.stack.fib.removeRoutes(ifindex: eth1)
        #expect(!lab.stack.fib.routes.contains { $0.prefix == IPv4Prefix("198.20.0.0/16")! })
    }
}
