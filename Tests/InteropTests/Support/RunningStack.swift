import Foundation
import Datapath
import DatapathCore

/// A `Stack` configured inside a namespace (its AF_PACKET devices open there) and running on
/// one unpinned worker in event mode, in this process, so a test can ask it anything.
final class RunningStack {
    let stack = Stack(workers: 1)
    let pool: PacketPool
    let group: WorkerGroup

    init(namespace: String, config: String) throws {
        pool = try PacketPool(capacity: 8192)
        let stack = self.stack
        _ = try inNamespace(namespace) { try stack.apply(config) }
        group = WorkerGroup(core: stack.core, pool: pool, count: 1, pin: false)
        group.pollAllQueues(of: stack.receivingDevices)
        stack.start(on: group)
        group.start()
    }

    /// Stops the worker; true when every skb went back to the pool.
    func stop() -> Bool {
        if group.isRunning { group.stop() }
        return pool.inUseCount == 0
    }

    deinit { _ = stop() }

    /// Drops by reason and device counters, for a failing test's report.
    func dropSummary() -> String {
        let drops = DropReason.allCases.compactMap { reason -> String? in
            let n = group.workers.reduce(0) { $0 + $1.drops[reason] }
            return n == 0 ? nil : "\(reason)=\(n)"
        }
        let devices = stack.links.map { "\($0.name): \($0.device.stats.snapshot())" }
        return "drops: \(drops.joined(separator: " "))\n" + devices.joined(separator: "\n")
    }

    func device(_ name: String) -> any NetDevice { stack.link(named: name)!.device }
}
