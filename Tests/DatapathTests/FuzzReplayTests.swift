import DatapathFuzzHarness
import Foundation
import Testing

/// The fuzz targets' bodies on their seed corpus and on every regression input a fuzzer once
/// found (Fuzz/Corpus, Fuzz/Regressions): each must pass its harness's invariants (a failure
/// traps, failing the run). `Scripts/fuzz` runs the fuzzers themselves.
@Suite struct FuzzReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func inputs(_ target: String) -> [URL] {
        ["Corpus", "Regressions"].flatMap { folder -> [URL] in
            let directory = root.appendingPathComponent(folder).appendingPathComponent(target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { $0 != "README" }.sorted().map { directory.appendingPathComponent($0) }
        }
    }

    @Test(arguments: ["FuzzStackReceive", "FuzzConfig", "FuzzWire", "FuzzReassembly", "FuzzNeighbour", "FuzzPcap", "FuzzUDPReceive"])
    func everySeedAndRegressionPasses(target: String) throws {
        let files = Self.inputs(target)
        #expect(files.count >= 4, "the seed corpus of \(target) is missing")
        let harness = target == "FuzzStackReceive" ? try StackReceiveHarness() : nil
        let reassembly = target == "FuzzReassembly" ? try ReassemblyHarness() : nil
        let neighbour = target == "FuzzNeighbour" ? try NeighbourHarness() : nil
        let udp = target == "FuzzUDPReceive" ? try UDPReceiveHarness() : nil
        for file in files {
            let data = try Data(contentsOf: file)
            data.withUnsafeBytes { bytes in
                switch target {
                case "FuzzStackReceive": harness!.run(bytes)
                case "FuzzConfig": ConfigHarness.run(bytes)
                case "FuzzReassembly": reassembly!.run(bytes)
                case "FuzzNeighbour": neighbour!.run(bytes)
                case "FuzzPcap": PcapHarness.run(bytes)
                case "FuzzUDPReceive": udp!.run(bytes)
                default: WireHarness.run(bytes)
                }
            }
        }
        if let reassembly {
            // The in-order, reversed, duplicate and two-source seeds complete 5 datagrams.
            #expect(reassembly.delivered >= 5, "\(reassembly.delivered) datagrams reassembled")
        }
        if let neighbour {
            // The seeds resolve neighbours and forward what waited for them.
            #expect(neighbour.forwarded >= 4, "\(neighbour.forwarded) packets forwarded to resolved neighbours")
        }
        if let udp {
            // The seeds' good datagrams reach their sockets (broadcasts two of them).
            #expect(udp.delivered >= 6, "\(udp.delivered) datagrams received")
        }
    }
}
