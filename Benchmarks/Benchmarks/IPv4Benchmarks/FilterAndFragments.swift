import Benchmark
import BenchmarkSupport
import Datapath
import DatapathCore
import DatapathWire

/// The filter table on the FORWARD hook with 1, 10 and 100 rules that none of the packets match
/// (each packet walks every rule), and the fragment → reassemble round trip of 1500 → 576.
func filterAndFragmentBenchmarks() {
    for (hook, rules) in FilterRuleSpec.hooks.flatMap({ hook in [1, 10, 100].map { (hook, $0) } }) {
        Benchmark("Filter table, \(hook), \(rules) rule(s) scanned per packet, batches of 256") { benchmark in
            let pool = try! PacketPool(capacity: 512)
            let worker = Worker(pool: pool)
            let stack = Stack()
            for port in 0..<rules {
                var spec = FilterRuleSpec(hook: hook, verdict: .drop)
                spec.ipProtocol = .udp
                spec.destinationPorts = UInt16(1000 + port)...UInt16(1000 + port)
                try! stack.addFilterRule(spec)
            }
            var batch = PacketBatch()
            for i in 0..<256 {
                let skb = udpPacket(worker, source: IPv4Address(198, 18, 0, 1), to: i)
                skb.data.storeBytes(of: UInt16(9).bigEndian, toByteOffset: 22, as: UInt16.self)
                batch.append(skb)
            }
            benchmark.startMeasurement()
            for _ in 0..<(benchmark.scaledIterations.count / 256) {
                stack.netfilter.run(hook, &batch, worker: worker)
            }
            benchmark.stopMeasurement()
            precondition(batch.count == 256)
            worker.cache.free(&batch)
        }
    }

    // One iteration is one datagram: a 1500-byte IPv4 packet leaves through ip_output on a
    // 576-byte MTU (ip_fragment: three fragments), the fragments come back in through
    // ip_local_deliver (ip_defrag) and the reassembled packet is the next round's input.
    Benchmark("Fragment 1500 → 576 and reassemble, in-memory (datagrams/s)",
              configuration: .init(metrics: [.throughput, .wallClock, .mallocCountTotal], scalingFactor: .kilo)) { benchmark in
        let rig = try! FragmentRig()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { rig.round() }
        benchmark.stopMeasurement()
        precondition(rig.stack.ipv4.statistics[.reasmOKs] >= UInt64(benchmark.scaledIterations.count))
    }
}

/// eth0 (MTU 576) wired to wire0; a route to 198.18.1.2 through eth0; protocol 253 handled by
/// the rig, which keeps each reassembled datagram for the next round.
final class FragmentRig: IPProtocolHandler, @unchecked Sendable {
    let pool: PacketPool
    let worker: Worker
    let stack: Stack
    let eth0: MemoryDevice, wire0: MemoryDevice
    var batch = PacketBatch()
    var packet: SKB?

    init() throws {
        pool = try PacketPool(capacity: 1024)
        worker = Worker(pool: pool)
        stack = Stack()
        (eth0, wire0) = MemoryDevice.pair("eth0", MACAddress(2, 0, 0, 0, 0, 1), "wire0", MACAddress(2, 0, 0, 0, 0, 2))
        try stack.addDevice(eth0)
        try stack.addDevice(wire0)
        try stack.apply("""
            addr add 198.18.1.1/24 dev eth0
            neigh add 198.18.1.2 lladdr 02:00:00:00:00:02 dev eth0
            link set eth0 mtu 576
            """)
        stack.ipv4.addProtocol(IPProtocol(rawValue: 253), self)
        let skb = worker.cache.allocate()!
        let data = skb.put(1500)!
        IPv4Repr(source: IPv4Address(198, 18, 1, 1), destination: IPv4Address(198, 18, 1, 2),
                 protocol: IPProtocol(rawValue: 253), ttl: 64, payloadLength: 1480, identification: 1,
                 dontFragment: false, dscp: 0).emit(to: data)
        packet = skb
    }


    func receive(_ batch: inout PacketBatch, worker: Worker) {
        let skb = batch[0]
        _ = skb.push(20)
        packet = skb
        batch.removeAll()
    }

    func round() {
        let skb = packet!
        packet = nil
        stack.ipv4.routeOutput(to: IPv4Address(198, 18, 1, 2), tos: 0, mark: 0, worker: worker).apply(to: skb)
        skb.resetNetworkHeader()
        batch.append(skb)
        stack.ipv4.ipOutput(&batch, worker: worker)
        _ = wire0.receive(queue: 0, into: &batch, max: 8, worker: worker)
        for i in batch.indices {
            _ = batch[i].pull(14)
            batch[i].resetNetworkHeader()
            batch[i].inputIfindex = wire0.ifindex
        }
        stack.ipv4.ipLocalDeliver(&batch, worker: worker)
    }
}
