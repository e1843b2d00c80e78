import BenchmarkSupport
import CDatapath
import Datapath
import DatapathCore

// The whole in-memory forward path (BenchmarkSupport.ForwardRig) for PACKETS packets, as a plain
// program: under `valgrind --tool=callgrind` its instruction count per packet is the steady
// measure this noisy VM cannot give in time. Usage:
// forward-profile [PACKETS] [random|nocache|staged|bond|bond-staged|pool|udp-echo|udp-consume]
// (`staged`: the fast path off; `bond`: in through an active-backup bond's slave; `pool`: the
// pool's alloc+free in batches of 32 instead of the forward path; `udp-echo`/`udp-consume`:
// BenchmarkSupport.UDPRig's in-memory echo round / receive path instead).
let arguments = CommandLine.arguments
let packets = arguments.count > 1 ? Int(arguments[1]) ?? 1_000_000 : 1_000_000
let variant = arguments.count > 2 ? arguments[2] : "cached"
if variant == "pool" {
    let pool = try PacketPool(capacity: 4096)
    let worker = Worker(pool: pool)
    let cache = worker.cache
    var batch = PacketBatch(capacity: 32)
    let start = CDatapath_monotonic_ns()
    for _ in 0..<(packets / 32) {
        _ = cache.allocateBulk(batch.slots, count: 32)
        batch.count = 32
        cache.free(&batch)
    }
    let elapsed = Double(CDatapath_monotonic_ns() - start)
    withExtendedLifetime((pool, worker)) {}
    print("forward-profile: \(packets) pool alloc+free, \(String(format: "%.2f", elapsed / Double(packets))) ns each")
} else if variant.hasPrefix("udp-") {
    let rig = try UDPRig(mode: variant == "udp-echo" ? .echo : .consume)
    rig.run(datagrams: 4096)
    let start = CDatapath_monotonic_ns()
    rig.run(datagrams: packets)
    let elapsed = Double(CDatapath_monotonic_ns() - start)
    rig.drainRing()
    print("forward-profile: \(packets) datagrams (\(variant)), \(String(format: "%.1f", elapsed / Double(packets))) ns each")
} else {
    let rig = try ForwardRig(randomDestinations: variant == "random", cacheEnabled: variant != "nocache",
                             fastPath: variant != "staged" && variant != "bond-staged",
                             bondedIngress: variant.hasPrefix("bond"))
    rig.run(packets: 4096)  // warm: routes, neighbours, caches
    let start = CDatapath_monotonic_ns()
    rig.run(packets: packets)
    let elapsed = Double(CDatapath_monotonic_ns() - start)
    rig.drainRing()
    print("forward-profile: \(packets) packets (\(variant)), \(String(format: "%.1f", elapsed / Double(packets))) ns/packet, "
          + "\(String(format: "%.1f", Double(packets) / elapsed * 1000)) Mpps")
}
