// swift-tools-version: 6.1
// The benchmarks are their own package so that users of the library never resolve
// package-benchmark. Run from this folder: `swift package benchmark --no-progress`.
import PackageDescription
import class Foundation.ProcessInfo
import struct Foundation.URL

// A path dependency's identity is its folder's name, which differs between checkouts.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = root.lastPathComponent.lowercased()

let package = Package(
    name: "swift-datapath-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .target(
            name: "BenchmarkSupport",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "DatapathCore", package: rootIdentity),
                .product(name: "DatapathWire", package: rootIdentity),
                .product(name: "Datapath", package: rootIdentity),
            ],
            path: "Support/BenchmarkSupport"
        ),
        // The whole in-memory forward path as a plain program, for callgrind's instruction
        // counts: `forward-profile PACKETS [random]` (see the README).
        .executableTarget(
            name: "forward-profile",
            dependencies: ["BenchmarkSupport"],
            path: "Support/ForwardProfile"
        ),
    ]
)

func benchmark(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "Benchmark", package: "benchmark"), "BenchmarkSupport"]
            + products.map { .product(name: $0, package: rootIdentity) },
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

package.targets += [
    benchmark("WireBenchmarks", ["DatapathWire"]),
    benchmark("CoreBenchmarks", ["DatapathCore", "DatapathWire", "Datapath"]),
    benchmark("AFPacketBenchmarks", ["DatapathCore", "DatapathWire", "Datapath", "DatapathGenerator"]),
    benchmark("L2Benchmarks", ["DatapathCore", "DatapathWire", "Datapath", "DatapathGenerator"]),
    benchmark("IPv4Benchmarks", ["DatapathCore", "DatapathWire", "Datapath"]),
    benchmark("UDPBenchmarks", ["DatapathCore", "DatapathWire", "Datapath"]),
]
