import BenchmarkSupport
import CDatapath
import Datapath
import DatapathCore
import DatapathWire

// The whole in-memory forward path (BenchmarkSupport.ForwardRig) for PACKETS packets, as a plain
// program: under `valgrind --tool=callgrind` its instruction count per packet is the steady
// measure this noisy VM cannot give in time. Usage:
// forward-profile [PACKETS] [random|nocache|staged|bond|bond-staged|pool|udp-echo|udp-echo-offload|udp-consume|udp-send|churn]
// (`staged`: the fast path off; `bond`: in through an active-backup bond's slave; `pool`: the
// pool's alloc+free in batches of 32 instead of the forward path; `udp-echo`/`udp-consume`:
// BenchmarkSupport.UDPRig's in-memory echo round / receive path instead (`udp-echo-offload`: its
// devices offload checksums both ways, as NICs do); `udp-send`: udp_sendmsg,
// one 64-byte datagram per call, onto an in-memory device).
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
} else if variant == "churn" {
    // forward-profile PACKETS churn [ROUTES] [BATCH] [default]: the cached forward path with ROUTES
    // Internet-shaped routes in the table (default 1 000 000), PACKETS packets timed alone,
    // then PACKETS more while another thread adds and deletes routes through `Stack.apply`
    // in batches of BATCH lines (default 1 000; 1: one line per apply). Prints both rates,
    // their ratio, the route cache misses during churn and the changes per second (#14).
    // `default`: the flows go by a default route instead of 198.19.0.0/16.
    let routes = arguments.count > 3 ? Int(arguments[3]) ?? 1_000_000 : 1_000_000
    let batch = arguments.count > 4 ? Int(arguments[4]) ?? 1_000 : 1_000
    let rig = try ForwardRig(randomDestinations: false)
    if arguments.count > 5 && arguments[5] == "default" {
        // The flows go by a default route, which the churn's prefixes take destinations from.
        try rig.stack.apply("route del 198.19.0.0/16\nroute add 0.0.0.0/0 via 198.18.2.2")
    }
    let loadStart = CDatapath_monotonic_ns()
    try rig.stack.apply(internetPrefixes(routes, seed: 42).map { "route add \($0) via 198.18.2.2" }.joined(separator: "\n"))
    let loadSeconds = Double(CDatapath_monotonic_ns() - loadStart) / 1e9
    let churn = RouteChurn(stack: rig.stack, batch: batch, gateway: "198.18.2.2")
    rig.run(packets: 4096, quiescent: true)
    func timed(_ body: () -> Void) -> Double {
        let start = CDatapath_monotonic_ns()
        body()
        return Double(CDatapath_monotonic_ns() - start) / 1e9
    }
    let alone = timed { rig.run(packets: packets, quiescent: true) }
    let missesBefore = rig.stack.ipv4.routeCacheCounters.misses
    churn.start()
    let during = timed { rig.run(packets: packets, quiescent: true) }
    print("  route cache misses during churn: \(rig.stack.ipv4.routeCacheCounters.misses - missesBefore)")
    let (changes, seconds) = churn.stop()
    let after = timed { rig.run(packets: packets, quiescent: true) }
    rig.drainRing()
    func mpps(_ seconds: Double) -> String { String(format: "%.2f Mpps", Double(packets) / seconds / 1e6) }
    print("forward-profile: churn, \(rig.stack.fib.count) routes (loaded in \(String(format: "%.2f", loadSeconds)) s), "
          + "batches of \(batch) line\(batch == 1 ? "" : "s")")
    print("  forwarding alone \(mpps(alone)), during churn \(mpps(during)) (ratio \(String(format: "%.3f", alone / during))), "
          + "after \(mpps(after))")
    print("  churn: \(changes) changes in \(String(format: "%.2f", seconds)) s = \(String(format: "%.0f", Double(changes) / seconds)) changes/s")
} else if variant == "udp-send" {
    // udp_sendmsg, the copying one-datagram call, 64-byte payloads onto an in-memory device
    // whose wire is read and freed every 256 (as Benchmarks' udp_sendmsg benchmark).
    let worker = Worker(pool: try PacketPool(capacity: 4096))
    let stack = Stack(workers: 1)
    let (eth1, wire) = MemoryDevice.pair("eth1", MACAddress(2, 0, 0, 0, 0, 2), "wire1", MACAddress(2, 0, 0, 0, 0, 3),
                                         ringSize: 1024)
    try stack.addDevice(eth1)
    try stack.apply("addr add 198.18.2.1/24 dev eth1\nneigh add 198.18.2.2 lladdr 02:00:00:00:00:03 dev eth1")
    try stack.udp.open(1, local: SocketAddress(IPv4Address(198, 18, 2, 1), 5000), receiver: DiscardingReceiver())
    let payload = [UInt8](repeating: 0x5A, count: 64)
    let destination = SocketAddress(IPv4Address(198, 18, 2, 2), 9)
    func send(_ count: Int) {
        var batch = PacketBatch()
        payload.withUnsafeBytes { bytes in
            for i in 0..<count {
                try! stack.udp.send(bytes, from: 1, to: destination, worker: worker)
                if i & 255 == 255 {
                    _ = wire.receive(queue: 0, into: &batch, max: 256, worker: worker)
                    worker.cache.free(&batch)
                }
            }
        }
    }
    send(4096)
    let start = CDatapath_monotonic_ns()
    send(packets)
    let elapsed = Double(CDatapath_monotonic_ns() - start)
    drain(wire, worker: worker)
    print("forward-profile: \(packets) datagrams (udp-send), \(String(format: "%.1f", elapsed / Double(packets))) ns each")
} else if variant.hasPrefix("udp-") {
    let rig = try UDPRig(mode: variant.hasPrefix("udp-echo") ? .echo : .consume,
                         checksumOffload: variant.hasSuffix("-offload"))
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
