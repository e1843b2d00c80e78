// swift-tools-version: 6.1
// The fuzz targets (libFuzzer), their own package so that no library target carries unsafe
// flags. Build and run them with `Scripts/fuzz` (it passes `-sanitize=fuzzer,address` to every
// module, the library's included, so the fuzzer sees their coverage).
import PackageDescription
import struct Foundation.URL

// A path dependency's identity is its folder's name, which differs between checkouts.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = root.lastPathComponent.lowercased()

func fuzzTarget(_ name: String) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "DatapathFuzzHarness", package: rootIdentity)],
        path: "Sources/\(name)",
        // libFuzzer supplies main(); the target only exports LLVMFuzzerTestOneInput.
        swiftSettings: [.unsafeFlags(["-parse-as-library"])]
    )
}

let package = Package(
    name: "swift-datapath-fuzz",
    dependencies: [.package(path: "..")],
    targets: [fuzzTarget("FuzzStackReceive"), fuzzTarget("FuzzConfig"), fuzzTarget("FuzzWire"),
              fuzzTarget("FuzzReassembly"), fuzzTarget("FuzzNeighbour"),
              fuzzTarget("FuzzPcap"), fuzzTarget("FuzzUDPReceive")]
)
