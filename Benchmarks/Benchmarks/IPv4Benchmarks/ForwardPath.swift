import Benchmark
import BenchmarkSupport
import Datapath
import DatapathCore
import DatapathWire

extension ForwardRig {
    func finish(_ benchmark: Benchmark) {
        drainRing()
        precondition(stack.ipv4.statistics[.forwDatagrams] >= UInt64(benchmark.scaledIterations.count),
                     "forwarded \(stack.ipv4.statistics[.forwDatagrams])")
        for stage in stages {
            let packets = worker.stages.packets(stage)
            guard packets > 0 else { continue }
            benchmark.measurement(.custom(stage.name + " cycles/pkt", useScalingFactor: false),
                                  Int(worker.stages.cycles(stage) / packets))
        }
    }
}

func forwardPathBenchmarks() {
    let stageMetrics: [BenchmarkMetric] = ["netif-receive-skb", "ip-rcv", "ip-route-input", "ip-forward",
                                           "ip-finish-output2"].map { .custom($0 + " cycles/pkt", useScalingFactor: false) }
    let configuration = Benchmark.Configuration(metrics: [.throughput, .wallClock, .mallocCountTotal] + stageMetrics)

    for (name, random, cache) in [("1k flows, route cache on", false, true),
                                  ("random destinations in a /16, route cache on", true, true),
                                  ("1k flows, route cache off", false, false)] {
        Benchmark("Whole forward path, in-memory RX → TX, \(name)", configuration: configuration) { benchmark in
            let rig = try! ForwardRig(randomDestinations: random, cacheEnabled: cache)
            benchmark.startMeasurement()
            rig.run(packets: benchmark.scaledIterations.count)
            benchmark.stopMeasurement()
            rig.finish(benchmark)
        }
    }

    // A route cache hit on its own: 256 cached keys (no set overflows) looked up round-robin.
    Benchmark("Route cache hit, 256 flows") { benchmark in
        let cache = RouteCache(capacity: 4096)
        let keys = (0..<256).map { UInt64(0xC613_0000 | UInt32($0)) << 32 | 0xC612_0102 }
        let result = RouteResult(input: .blackhole)
        for key in keys { cache.insert(key, 1, epoch: 1, result) }
        var found = 0
        benchmark.startMeasurement()
        cache.countLookups(benchmark.scaledIterations.count)
        keys.withUnsafeBufferPointer { list in
            for i in benchmark.scaledIterations {
                if cache.lookup(list[i & 255], 1, epoch: 1) != nil { found &+= 1 }
            }
        }
        benchmark.stopMeasurement()
        precondition(found == benchmark.scaledIterations.count)
    }
}
