import DatapathCore

/// The UDP MIB counters with the names /proc/net/snmp shows on its `Udp:` lines (Linux:
/// `UDP_MIB_*`), per worker and summed on read.
public final class UDPStatistics: @unchecked Sendable {
    public enum Counter: Int, CaseIterable, Sendable, CustomStringConvertible {
        case inDatagrams, noPorts, inErrors, outDatagrams, rcvbufErrors, sndbufErrors, inCsumErrors, ignoredMulti

        /// The SNMP name: `InDatagrams`, `NoPorts`, …
        public var description: String {
            switch self {
            case .inDatagrams: "InDatagrams"
            case .noPorts: "NoPorts"
            case .inErrors: "InErrors"
            case .outDatagrams: "OutDatagrams"
            case .rcvbufErrors: "RcvbufErrors"
            case .sndbufErrors: "SndbufErrors"
            case .inCsumErrors: "InCsumErrors"
            case .ignoredMulti: "IgnoredMulti"
            }
        }
    }

    @usableFromInline let counters: MIBCounters<Counter>

    public init(workers: Int) {
        counters = MIBCounters(workers: workers, count: Counter.allCases.count)
    }

    @inlinable @inline(__always)
    public func block(_ worker: Worker) -> CounterBlock { counters.block(worker) }

    public subscript(counter: Counter) -> UInt64 { counters[counter] }

    /// `Udp: InDatagrams …\nUdp: 12 …`, the two lines /proc/net/snmp prints.
    public func snmpLines() -> String { counters.snmpLines("Udp", Array(Counter.allCases)) }
}
