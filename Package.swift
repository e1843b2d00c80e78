// swift-tools-version: 6.2
import PackageDescription

// Library targets carry no unsafeFlags: SwiftPM refuses them in packages used as a dependency.
let package = Package(
    name: "swift-datapath",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Datapath", targets: ["Datapath"]),
        .library(name: "DatapathCore", targets: ["DatapathCore"]),
        .library(name: "DatapathWire", targets: ["DatapathWire"]),
        .library(name: "DatapathGenerator", targets: ["DatapathGenerator"]),
        .executable(name: "datapath", targets: ["DatapathCLI"]),
        .executable(name: "protocol-counter", targets: ["ProtocolCounter"]),
        .executable(name: "udp-echo", targets: ["UDPEcho"]),
        // The fuzz targets' bodies (Fuzz/ builds them with libFuzzer; the tests replay the
        // regression inputs through them).
        .library(name: "DatapathFuzzHarness", targets: ["DatapathFuzzHarness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
    ],
    targets: [
        .target(name: "CDatapath"),
        .systemLibrary(name: "CNUMA", pkgConfig: "numa", providers: [.apt(["libnuma-dev"])]),
        .target(name: "DatapathWire"),
        .target(
            name: "DatapathCore",
            dependencies: [
                "DatapathWire", "CDatapath", "CNUMA",
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        .target(
            name: "Datapath",
            dependencies: ["DatapathCore", "DatapathWire", .product(name: "Logging", package: "swift-log"),
                           .product(name: "SystemPackage", package: "swift-system")],
            // Every use of an unsafe construct (raw pointers, unchecked views) is marked
            // `unsafe` (SE-0458): a reader sees where memory safety rests on the code's own care.
            swiftSettings: [.strictMemorySafety()]
        ),
        .target(name: "DatapathFuzzHarness", dependencies: ["Datapath", "DatapathCore", "DatapathWire"]),
        // Traffic generation (Linux's pktgen role): the CLI's `gen`, tests and benchmarks.
        .target(name: "DatapathGenerator", dependencies: ["DatapathCore", "DatapathWire"]),
        .executableTarget(
            name: "DatapathCLI",
            dependencies: [
                "Datapath", "DatapathCore", "DatapathWire", "DatapathGenerator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ProtocolCounter",
            dependencies: ["DatapathCore", "DatapathWire"],
            path: "Examples/ProtocolCounter"
        ),
        // A UDP echo server on the run-to-completion socket API (`Scripts/bench-veth udp-echo`).
        .executableTarget(
            name: "UDPEcho",
            dependencies: ["Datapath", "DatapathCore"],
            path: "Examples/UDPEcho"
        ),
        .testTarget(name: "DatapathWireTests", dependencies: ["DatapathWire"]),
        .testTarget(name: "DatapathCoreTests", dependencies: ["DatapathCore", "DatapathWire"]),
        .testTarget(name: "DatapathTests",
                    dependencies: ["Datapath", "DatapathCore", "DatapathWire", "DatapathGenerator", "DatapathFuzzHarness"]),
        .testTarget(
            name: "InteropTests",
            dependencies: ["DatapathCore", "DatapathWire", "DatapathGenerator", "DatapathCLI", "ProtocolCounter", "UDPEcho"]
        ),
    ]
)
