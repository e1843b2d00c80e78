import Benchmark
import Datapath
import DatapathCore
import DatapathWire

// One scaled iteration is one lookup, so `throughput` reads as lookups/s.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        scalingFactor: .mega,
        maxDuration: .seconds(3),
        maxIterations: 20)

    for count in [1, 1_000, 500_000] {
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
