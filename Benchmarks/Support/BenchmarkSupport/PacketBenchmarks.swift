import Benchmark

/// The configuration every packet benchmark here shares: one scaled iteration is one packet (or
/// lookup), so `throughput` reads directly as packets/s; mallocs are counted (they must be 0).
public func usePacketBenchmarkDefaults(scalingFactor: BenchmarkScalingFactor = .mega, maxIterations: Int = 20) {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        scalingFactor: scalingFactor,
        maxDuration: .seconds(3),
        maxIterations: maxIterations)
}
