import CDatapath
import Datapath
import DatapathCore
import DatapathWire
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `count` distinct Internet-shaped prefixes — the lengths of a full table (mostly /24, then
/// /16–/23, a few shorter and longer) at random addresses — none inside 198.18.0.0/15, the
/// rigs' own traffic, so churn of them never moves a flow the rig forwards.
public func internetPrefixes(_ count: Int, seed: UInt64) -> [IPv4Prefix] {
    var random = SplitMix64(seed: seed)
    var prefixes = Set<IPv4Prefix>()
    let lab = IPv4Prefix(address: IPv4Address(198, 18, 0, 0), length: 15)!
    while prefixes.count < count {
        let roll = random.next() % 100
        let length: Int = roll < 55 ? 24 : roll < 75 ? 22 + Int(random.next() % 2)
            : roll < 93 ? 16 + Int(random.next() % 6) : roll < 95 ? 8 + Int(random.next() % 8) : 25 + Int(random.next() % 8)
        let prefix = IPv4Prefix(address: IPv4Address(hostOrder: UInt32(truncatingIfNeeded: random.next())), length: length)!
        guard !prefix.contains(lab.address), !lab.contains(prefix.address) else { continue }
        prefixes.insert(prefix)
    }
    return Array(prefixes)
}

/// Route changes as a routing daemon makes them over the control socket — `route add` and
/// `route del` lines through `Stack.apply` (parse, validate, resolve, FIB update and
/// publication), in batches of `batch` lines (1: one line per apply, as single requests) — on
/// a thread of their own, while the caller's thread forwards. Each round adds `batch` /24s
/// none of the table holds, then deletes them.
public final class RouteChurn: @unchecked Sendable {
    let stack: Stack
    let rounds: [(add: String, delete: [String])]
    let batch: Int
    let running = Atomic<Bool>(false)
    let changes = Atomic<Int>(0)
    var thread = pthread_t()
    var started: UInt64 = 0

    /// `gateway`: a next hop in one of the stack's connected subnets.
    public init(stack: Stack, batch: Int, gateway: String, seed: UInt64 = 99) {
        self.stack = stack
        self.batch = batch
        let table = Set(stack.fib.unorderedRoutes.map(\.prefix))
        let fresh = internetPrefixes(16 * batch + table.count, seed: seed).filter { !table.contains($0) }
        rounds = (0..<16).map { round in
            let prefixes = fresh[(round * batch)..<((round + 1) * batch)]
            let adds = prefixes.map { "route add \($0) via \(gateway)" }
            return (adds.joined(separator: "\n"), batch == 1 ? prefixes.map { "route del \($0)" }
                    : [prefixes.map { "route del \($0)" }.joined(separator: "\n")])
        }
    }

    /// Starts the churn thread.
    public func start() {
        running.store(true, ordering: .relaxed)
        started = CDatapath_monotonic_ns()
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { context in
            let churn = Unmanaged<RouteChurn>.fromOpaque(context!).takeRetainedValue()
            churn.loop()
            return nil
        }, context)
    }

    /// Stops it; returns the changes it made (each add and each delete is one) and the seconds.
    public func stop() -> (changes: Int, seconds: Double) {
        running.store(false, ordering: .relaxed)
        pthread_join(thread, nil)
        return (changes.load(ordering: .relaxed), Double(CDatapath_monotonic_ns() - started) / 1e9)
    }

    func loop() {
        var round = 0
        while running.load(ordering: .relaxed) {
            let (add, delete) = rounds[round & 15]
            if batch == 1 {
                for (line, undo) in zip(add.split(separator: "\n"), delete) {
                    try! stack.apply(String(line))
                    try! stack.apply(undo)
                    changes.add(2, ordering: .relaxed)
                    if !running.load(ordering: .relaxed) { return }
                }
            } else {
                try! stack.apply(add)
                try! stack.apply(delete[0])
                changes.add(2 * batch, ordering: .relaxed)
            }
            round += 1
        }
    }
}
