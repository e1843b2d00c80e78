import BenchmarkSupport
import CDatapath
import Datapath
import DatapathCore

// The whole in-memory forward path (BenchmarkSupport.ForwardRig) for PACKETS packets, as a plain
// program: under `valgrind --tool=callgrind` its instruction count per packet is the steady
// measure this noisy VM cannot give in time. Usage: forward-profile [PACKETS] [random|nocache]
let arguments = CommandLine.arguments
let packets = arguments.count > 1 ? Int(arguments[1]) ?? 1_000_000 : 1_000_000
let variant = arguments.count > 2 ? arguments[2] : "cached"
let rig = try ForwardRig(randomDestinations: variant == "random", cacheEnabled: variant != "nocache")
rig.run(packets: 4096)  // warm: routes, neighbours, caches
let start = CDatapath_monotonic_ns()
rig.run(packets: packets)
let elapsed = Double(CDatapath_monotonic_ns() - start)
rig.drainRing()
print("forward-profile: \(packets) packets (\(variant)), \(String(format: "%.1f", elapsed / Double(packets))) ns/packet, "
      + "\(String(format: "%.1f", Double(packets) / elapsed * 1000)) Mpps")
