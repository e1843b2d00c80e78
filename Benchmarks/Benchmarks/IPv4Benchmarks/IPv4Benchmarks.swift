import Benchmark
import BenchmarkSupport
@_spi(Internals) import Datapath
import DatapathCore
import DatapathWire

// One scaled iteration is one packet or one lookup, so `throughput` reads as packets/s or lookups/s.
let benchmarks: @Sendable () -> Void = {
    usePacketBenchmarkDefaults()
    forwardPathBenchmarks()
    outputPathBenchmarks()
    filterAndFragmentBenchmarks()

    // ip_rcv over a batch of valid 64-byte UDP frames' IPv4 packets; the checks leave the packets
    // as they were, so the same batch is validated again each round.
    Benchmark("ip_rcv, valid 46-byte IPv4 packets, batches of 256") { benchmark in
        let pool = try! PacketPool(capacity: 512)
        let worker = Worker(pool: pool)
        let ipv4 = Stack().ipv4
        var batch = PacketBatch()
        for i in 0..<256 { batch.append(udpPacket(worker, source: IPv4Address(198, 18, 0, 1), to: i)) }
        benchmark.startMeasurement()
        for _ in 0..<(benchmark.scaledIterations.count / 256) {
            ipv4.ipRcv(&batch, worker: worker)
        }
        benchmark.stopMeasurement()
        precondition(batch.count == 256)
        worker.cache.free(&batch)
    }

    // NF_HOOK on a batch of 256: with no functions (one load and branch per batch), and with one
    // function that accepts everything (its call, verdict reset and the sorting pass).
    for (hook, functions) in NetfilterHook.allCases.flatMap({ hook in [0, 1].map { (hook, $0) } }) {
        Benchmark("NF_HOOK \(hook), \(functions) function(s), batches of 256") { benchmark in
            let pool = try! PacketPool(capacity: 512)
            let worker = Worker(pool: pool)
            let netfilter = Netfilter(workers: 1)
            if functions == 1 { netfilter.register(AcceptAll(), on: hook, priority: 0) }
            var batch = PacketBatch()
            for _ in 0..<256 { batch.append(worker.cache.allocate()!) }
            benchmark.startMeasurement()
            for _ in 0..<(benchmark.scaledIterations.count / 256) {
                netfilter.run(hook, &batch, worker: worker)
            }
            benchmark.stopMeasurement()
            precondition(batch.count == 256)
            worker.cache.free(&batch)
        }
    }

    // A configuration of 100 000 Internet-shaped `route add` lines applied to a fresh stack:
    // parse, validation against the route model, one FIB publication (#14). One scaled
    // iteration is one whole configuration.
    Benchmark("Config apply, 100 000 route lines, one FIB publication (applies/s; × 100 000 = lines/s)",
              configuration: .init(metrics: [.throughput, .wallClock, .peakMemoryResident],
                                   scalingFactor: .one, maxDuration: .seconds(20), maxIterations: 3)) { benchmark in
        let (fib, _) = randomTable(routes: 100_000, destinations: 1)
        let text = "addr add 198.18.0.1/24 dev eth0\n" + fib.routes.map {
            "route add \($0.prefix) via 198.18.0.2"
        }.joined(separator: "\n")
        for _ in benchmark.scaledIterations {
            let stack = Stack(workers: 1)
            try! stack.addDevice(MemoryDevice(name: "eth0", macAddress: MACAddress(0x02, 0, 0, 0, 0, 1)))
            benchmark.startMeasurement()
            try! stack.apply(text)
            benchmark.stopMeasurement()
            precondition(stack.fib.count == 100_003)
        }
    }

    for count in [1, 1_000, 1_000_000] {
        // #14: a route change costs what its prefix covers, not the table — one add and one
        // delete of a /24 per iteration, each published (a worker sees each), in a full table.
        Benchmark("FIB churn, add + delete of a /24 (one publication each), \(count) routes (changes/s = 2 × this)") {
            benchmark in
            let (fib, _) = randomTable(routes: count, destinations: 16)
            var random = SplitMix64(seed: 7)
            let prefixes = (0..<1024).map { _ in
                IPv4Prefix(address: IPv4Address(hostOrder: 0xC613_0000 | UInt32(truncatingIfNeeded: random.next()) & 0xFF00), length: 24)!
            }
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations {
                let prefix = prefixes[i & 1023]
                try? fib.add(Route(prefix: prefix, gateway: IPv4Address(hostOrder: 0xC612_0202), ifindex: 2, metric: 77))
                try? fib.remove(prefix, metric: 77)
            }
            benchmark.stopMeasurement()
        }
        Benchmark("FIB lookup, \(count) random routes, destinations inside them") { benchmark in
            let (fib, destinations) = randomTable(routes: count, destinations: 1 << 16)
            let snapshot = fib.snapshot
            var found = 0
            benchmark.startMeasurement()
            destinations.withUnsafeBufferPointer { list in
                for i in benchmark.scaledIterations {
                    found &+= snapshot.lookupIndex(list[i & 0xFFFF])
                }
            }
            benchmark.stopMeasurement()
            blackHole(found)
        }
    }
}

/// A table shaped like an Internet routing table — mostly /24, then /22–/23, /16–/21, a few
/// longer and shorter — and destinations drawn inside its routes.
func randomTable(routes count: Int, destinations: Int) -> (FIB, [UInt32]) {
    var random = SplitMix64(seed: 42)
    var prefixes = Set<IPv4Prefix>()
    while prefixes.count < count {
        let roll = random.next() % 100
        let length: Int = roll < 55 ? 24 : roll < 75 ? 22 + Int(random.next() % 2)
            : roll < 93 ? 16 + Int(random.next() % 6) : roll < 95 ? 8 + Int(random.next() % 8) : 25 + Int(random.next() % 8)
        prefixes.insert(IPv4Prefix(address: IPv4Address(hostOrder: UInt32(truncatingIfNeeded: random.next())), length: length)!)
    }
    let list = Array(prefixes)
    let fib = FIB()
    try! fib.add(list.enumerated().map { Route(prefix: $1, gateway: IPv4Address(hostOrder: UInt32($0)), ifindex: 1) })
    let targets = (0..<destinations).map { _ -> UInt32 in
        let prefix = list[Int(random.next() % UInt64(list.count))]
        let host = UInt32(truncatingIfNeeded: random.next()) & ~IPv4Prefix.maskBits(prefix.length)
        return prefix.address.hostOrder | host
    }
    return (fib, targets)
}

final class AcceptAll: NetfilterHookFunction, @unchecked Sendable {
    func hook(_ hook: NetfilterHook, batch: borrowing PacketBatch, verdicts: UnsafeMutablePointer<NetfilterVerdict>,
              worker: Worker) {}
}

/// The stage benchmarks' test packet: 46 bytes of IPv4/UDP (a 20-byte header, DF, TTL 64, 26
/// bytes of zero payload) from `source` to 198.19.0.`index`, `data` at the IPv4 header.
func udpPacket(_ worker: Worker, source: IPv4Address, to index: Int) -> SKB {
    let skb = worker.cache.allocate()!
    skb.reserve(64)
    IPv4Repr(source: source, destination: IPv4Address(198, 19, 0, UInt8(truncatingIfNeeded: index)), protocol: .udp,
             ttl: 64, payloadLength: 26, identification: 0, dontFragment: true, dscp: 0).emit(to: skb.put(46)!)
    return skb
}
