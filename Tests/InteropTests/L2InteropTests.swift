import DatapathGenerator
import Foundation
import Testing
import Datapath
import DatapathCore
import DatapathWire

/// L2 and neighbours against the Linux kernel as peer, in namespaces this suite makes
/// (198.18.0.0/15 only). The stack runs in process on AF_PACKET rings.
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct L2InteropTests {
    @Test func theKernelAndTheStackResolveEachOtherWithARP() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let host = try lab.namespace("host")
        let dut = try lab.namespace("dut")
        try lab.veth("h0", in: host, mac: "02:00:00:00:01:02", "d0", in: dut, mac: "02:00:00:00:01:01")
        try lab.address("198.18.0.2/24", dev: "h0", in: host)
        let running = try RunningStack(namespace: dut, config: """
            link add eth0 type afpacket dev d0
            addr add 198.18.0.1/24 dev eth0
            """)
        let stack = running.stack
        let eth0 = running.device("eth0")
        let kernelHost = IPv4Address(198, 18, 0, 2)

        // The stack resolves the kernel host: INCOMPLETE → broadcast request → reply → REACHABLE.
        stack.perform { worker in stack.neighbours.resolve(kernelHost, device: eth0, worker: worker) }
        #expect(waitUntil(timeout: 5) { stack.neighbours.state(of: kernelHost, ifindex: eth0.ifindex) == .reachable })
        #expect(stack.showNeighbours() == "198.18.0.2 dev eth0 lladdr 02:00:00:00:01:02 REACHABLE")

        // The kernel resolves the stack: forget what the stack's request taught it, then ping
        // (the stack does not answer ICMP yet; the ARP exchange is what counts).
        _ = try lab.exec(host, "/usr/sbin/ip", ["neigh", "flush", "dev", "h0"])
        _ = try lab.exec(host, "/usr/bin/ping", ["-c", "1", "-W", "1", "198.18.0.1"], timeout: 10)
        let neigh = try lab.exec(host, "/usr/sbin/ip", ["neigh", "show", "198.18.0.1", "dev", "h0"]).stdout
        #expect(neigh.contains("lladdr 02:00:00:00:01:01"), "ip neigh: \(neigh)")
        #expect(neigh.contains("REACHABLE"), "ip neigh: \(neigh)")
        #expect(stack.arp[.repliesSent] >= 1)
        #expect(running.stop())
    }

    @Test func threeKernelHostsReachEachOtherThroughTheStacksBridge() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let dut = try lab.namespace("dut")
        var hosts: [String] = []
        for i in 1...3 {
            let host = try lab.namespace("h\(i)")
            try lab.veth("h\(i)", in: host, mac: "02:00:00:00:02:0\(i)", "p\(i)", in: dut, mac: "02:00:00:00:03:0\(i)")
            try lab.address("198.18.1.\(i)/24", dev: "h\(i)", in: host)
            hosts.append(host)
        }
        let running = try RunningStack(namespace: dut, config: """
            link add p1 type afpacket dev p1
            link add p2 type afpacket dev p2
            link add p3 type afpacket dev p3
            link add br0 type bridge
            link set p1 master br0
            link set p2 master br0
            link set p3 master br0
            addr add 198.18.1.254/24 dev br0
            """)
        let bridge = try #require(running.stack.bridges.first)
        for (from, to) in [(0, 2), (1, 3), (2, 1)] {
            let ping = try lab.exec(hosts[from], "/usr/bin/ping", ["-c", "3", "-i", "0.2", "-W", "2", "198.18.1.\(to)"],
                                    timeout: 20)
            #expect(ping.status == 0, "h\(from + 1) → 198.18.1.\(to): \(ping.stdout)")
            #expect(ping.stdout.contains("3 received"), "\(ping.stdout)")
        }
        for i in 0..<3 {
            #expect(bridge.fdb.port(of: MACAddress("02:00:00:00:02:0\(i + 1)")!) == i)
        }
        // Six echo requests and six replies crossed as known unicast.
        #expect(bridge[.forwarded] >= 12)
        // The bridge device answers ARP for its own address through its ports.
        _ = try lab.exec(hosts[0], "/usr/bin/ping", ["-c", "1", "-W", "1", "198.18.1.254"], timeout: 10)
        let neigh = try lab.exec(hosts[0], "/usr/sbin/ip", ["neigh", "show", "198.18.1.254"]).stdout
        #expect(neigh.contains("lladdr \(bridge.macAddress)"), "ip neigh: \(neigh)")
        print("bridge fdb:\n\(running.stack.showFDB())")
        print(running.dropSummary())
        #expect(running.stop())
    }

    @Test func anActiveBackupBondKeepsAFlowGoingWhenItsActiveSlaveGoesDown() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let dut = try lab.namespace("dut")
        let peer = try lab.namespace("peer")
        try lab.veth("b0", in: dut, mac: "02:00:00:00:04:01", "k0", in: peer, mac: "02:00:00:00:05:01")
        try lab.veth("b1", in: dut, mac: "02:00:00:00:04:02", "k1", in: peer, mac: "02:00:00:00:05:02")
        // The peer is a kernel host behind a kernel bridge over both links (a switch, in effect).
        try lab.ip(["-n", peer, "link", "add", "kbr", "address", "02:00:00:00:05:ff", "type", "bridge"])
        _ = try lab.exec(peer, "/usr/sbin/sysctl", ["-qw", "net.ipv6.conf.kbr.disable_ipv6=1"])
        try lab.ip(["-n", peer, "link", "set", "k0", "master", "kbr"])
        try lab.ip(["-n", peer, "link", "set", "k1", "master", "kbr"])
        try lab.ip(["-n", peer, "link", "set", "kbr", "up"])
        try lab.waitForOperstateUp("kbr", in: peer)
        try lab.address("198.18.2.2/24", dev: "kbr", in: peer)
        let running = try RunningStack(namespace: dut, config: """
            link add s0 type afpacket dev b0
            link add s1 type afpacket dev b1
            link add bond0 type bond mode active-backup
            link set s0 master bond0
            link set s1 master bond0
            addr add 198.18.2.1/24 dev bond0
            """)
        let stack = running.stack
        let bond = try #require(stack.bonds.first)
        #expect(bond.activeSlave?.device.name == "s0")

        // A UDP flow from the bond to a closed port of the peer, counted by the peer's
        // Udp NoPorts: 50 frames every 100 ms for 3 s; the active slave goes down after 1 s.
        var spec = UDPFlowGenerator.Specification(
            sourceMAC: bond.macAddress, destinationMAC: MACAddress("02:00:00:00:05:ff")!,
            source: IPv4Address(198, 18, 2, 1), destination: IPv4Address(198, 18, 2, 2))
        spec.destinationPort = 9
        let generator = try UDPFlowGenerator(spec)
        let before = try udpNoPorts(lab, peer)
        let rounds = 30, perRound = 50
        for round in 0..<rounds {
            stack.perform { worker in
                var batch = PacketBatch()
                for _ in 0..<perRound {
                    guard let skb = worker.cache.allocate() else { break }
                    _ = generator.fill(skb, flow: 0)
                    batch.append(skb)
                }
                stack.core.devQueueXmit(&batch, device: bond, worker: worker)
            }
            if round == 10 { try lab.ip(["-n", dut, "link", "set", "b0", "down"]) }
            usleep(100_000)
        }
        usleep(300_000)
        let received = try udpNoPorts(lab, peer) - before
        let sent = rounds * perRound
        let lost = sent - received
        print("bond failover: sent \(sent), peer received \(received), lost \(lost); failovers \(bond.failovers)")
        #expect(bond.failovers == 1)
        #expect(bond.activeSlave?.device.name == "s1")
        #expect(bond.slaveCounters(bond.slaves[1]).txPackets > 0)
        #expect(received > 0)
        #expect(lost <= 3 * perRound, "lost \(lost) of \(sent)")
        // The gratuitous ARP after failover moved the bond's MAC to k1 in the kernel bridge.
        let fdb = try lab.exec(peer, "/usr/sbin/bridge", ["fdb", "show", "br", "kbr"]).stdout
        #expect(fdb.contains("\(bond.macAddress) dev k1"), "kernel fdb: \(fdb)")
        #expect(running.stop())
    }

    /// The peer's `Udp: NoPorts` counter from /proc/net/snmp.
    func udpNoPorts(_ lab: Lab, _ ns: String) throws -> Int {
        let snmp = try lab.exec(ns, "/usr/bin/cat", ["/proc/net/snmp"]).stdout
        let udp = snmp.split(separator: "\n").filter { $0.hasPrefix("Udp:") }
        guard udp.count >= 2 else { throw LabError("no Udp lines in /proc/net/snmp") }
        let names = udp[0].split(separator: " ")
        let values = udp[1].split(separator: " ")
        guard let index = names.firstIndex(of: "NoPorts"), let value = Int(values[index]) else {
            throw LabError("no NoPorts in /proc/net/snmp")
        }
        return value
    }
}
