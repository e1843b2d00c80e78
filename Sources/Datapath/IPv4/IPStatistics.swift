import DatapathCore

/// The IP MIB counters with the names /proc/net/snmp (`Ip:`) and /proc/net/netstat (`IpExt:`)
/// show (Linux: `IPSTATS_MIB_*`), per worker and summed on read.
public final class IPStatistics: @unchecked Sendable {
    public enum Counter: Int, CaseIterable, Sendable, CustomStringConvertible {
        case inReceives, inHdrErrors, inAddrErrors, forwDatagrams, inUnknownProtos, inDiscards, inDelivers
        case outRequests, outDiscards, outNoRoutes, reasmTimeout, reasmReqds, reasmOKs, reasmFails
        case fragOKs, fragFails, fragCreates, inNoRoutes, inTruncatedPkts, inCsumErrors

        /// The SNMP name: `InReceives`, `ForwDatagrams`, …
        public var description: String {
            switch self {
            case .inReceives: "InReceives"
            case .inHdrErrors: "InHdrErrors"
            case .inAddrErrors: "InAddrErrors"
            case .forwDatagrams: "ForwDatagrams"
            case .inUnknownProtos: "InUnknownProtos"
            case .inDiscards: "InDiscards"
            case .inDelivers: "InDelivers"
            case .outRequests: "OutRequests"
            case .outDiscards: "OutDiscards"
            case .outNoRoutes: "OutNoRoutes"
            case .reasmTimeout: "ReasmTimeout"
            case .reasmReqds: "ReasmReqds"
            case .reasmOKs: "ReasmOKs"
            case .reasmFails: "ReasmFails"
            case .fragOKs: "FragOKs"
            case .fragFails: "FragFails"
            case .fragCreates: "FragCreates"
            case .inNoRoutes: "InNoRoutes"
            case .inTruncatedPkts: "InTruncatedPkts"
            case .inCsumErrors: "InCsumErrors"
            }
        }
    }

    @usableFromInline let counters: MIBCounters<Counter>

    public init(workers: Int) {
        counters = MIBCounters(workers: workers, count: Counter.allCases.count)
    }

    /// The block `worker` counts into.
    @inlinable @inline(__always)
    public func block(_ worker: Worker) -> CounterBlock { counters.block(worker) }

    public subscript(counter: Counter) -> UInt64 { counters[counter] }

    /// `Ip: InReceives … \nIp: 12 …`, the two lines /proc/net/snmp prints (the IpExt counters
    /// follow on their own pair of lines).
    public func snmpLines() -> String {
        let ip: [Counter] = [.inReceives, .inHdrErrors, .inAddrErrors, .forwDatagrams, .inUnknownProtos, .inDiscards,
                             .inDelivers, .outRequests, .outDiscards, .outNoRoutes, .reasmTimeout, .reasmReqds,
                             .reasmOKs, .reasmFails, .fragOKs, .fragFails, .fragCreates]
        let ext: [Counter] = [.inNoRoutes, .inTruncatedPkts, .inCsumErrors]
        return counters.snmpLines("Ip", ip) + "\n" + counters.snmpLines("IpExt", ext)
    }
}
