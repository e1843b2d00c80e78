/// One protocol's SNMP MIB counters (Linux: a per-CPU `*_mib` summed on read, as
/// /proc/net/snmp shows it): a counter block per worker, indexed by `Counter`'s raw value.
public final class MIBCounters<Counter: RawRepresentable & CustomStringConvertible>: @unchecked Sendable
where Counter.RawValue == Int {
    @usableFromInline let blocks: WorkerLocal<CounterBlock>

    /// `count` counters for each of `workers` workers.
    public init(workers: Int, count: Int) {
        blocks = WorkerLocal(workers: max(1, workers)) { _ in CounterBlock(count: count) }
    }

    /// The block `worker` counts into.
    @inlinable @inline(__always)
    public func block(_ worker: Worker) -> CounterBlock { blocks[worker] }

    /// A counter summed over workers.
    public subscript(counter: Counter) -> UInt64 { blocks.reduce(0) { $0 &+ $1[counter.rawValue] } }

    /// `Prefix: Name1 Name2 …\nPrefix: 12 0 …`, the two lines /proc/net/snmp prints for them.
    public func snmpLines(_ prefix: String, _ counters: [Counter]) -> String {
        "\(prefix): " + counters.map(\.description).joined(separator: " ") + "\n\(prefix): "
            + counters.map { String(self[$0]) }.joined(separator: " ")
    }
}
