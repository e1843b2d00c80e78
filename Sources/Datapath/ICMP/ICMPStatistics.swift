import DatapathCore
import DatapathWire

/// The ICMP MIB counters with the names /proc/net/snmp shows on its `Icmp:` lines (Linux:
/// `ICMP_MIB_*` and the per-type `IcmpMsg` counts folded into the named ones), per worker.
public final class ICMPStatistics: @unchecked Sendable {
    public enum Counter: Int, CaseIterable, Sendable, CustomStringConvertible {
        case inMsgs, inErrors, inCsumErrors, inDestUnreachs, inTimeExcds, inParmProbs, inSrcQuenchs, inRedirects
        case inEchos, inEchoReps, inTimestamps, inTimestampReps, inAddrMasks, inAddrMaskReps
        case outMsgs, outErrors, outRateLimitGlobal, outRateLimitHost, outDestUnreachs, outTimeExcds, outParmProbs
        case outSrcQuenchs, outRedirects, outEchos, outEchoReps, outTimestamps, outTimestampReps, outAddrMasks
        case outAddrMaskReps

        /// The SNMP name: `InMsgs`, `OutDestUnreachs`, …
        public var description: String { Counter.names[rawValue] }

        static let names = [
            "InMsgs", "InErrors", "InCsumErrors", "InDestUnreachs", "InTimeExcds", "InParmProbs", "InSrcQuenchs",
            "InRedirects", "InEchos", "InEchoReps", "InTimestamps", "InTimestampReps", "InAddrMasks", "InAddrMaskReps",
            "OutMsgs", "OutErrors", "OutRateLimitGlobal", "OutRateLimitHost", "OutDestUnreachs", "OutTimeExcds",
            "OutParmProbs", "OutSrcQuenchs", "OutRedirects", "OutEchos", "OutEchoReps", "OutTimestamps",
            "OutTimestampReps", "OutAddrMasks", "OutAddrMaskReps",
        ]
    }

    let counters: MIBCounters<Counter>

    public init(workers: Int) {
        counters = MIBCounters(workers: workers, count: Counter.allCases.count)
    }

    @inline(__always)
    func block(_ worker: Worker) -> CounterBlock { counters.block(worker) }

    public subscript(counter: Counter) -> UInt64 { counters[counter] }

    /// The `In…` counter for a received type, if it has one.
    static func input(_ type: ICMPType) -> Counter? {
        switch type.rawValue {
        case 0: .inEchoReps
        case 3: .inDestUnreachs
        case 4: .inSrcQuenchs
        case 5: .inRedirects
        case 8: .inEchos
        case 11: .inTimeExcds
        case 12: .inParmProbs
        case 13: .inTimestamps
        case 14: .inTimestampReps
        case 17: .inAddrMasks
        case 18: .inAddrMaskReps
        default: nil
        }
    }

    /// The `Out…` counter for a sent type, if it has one.
    static func output(_ type: ICMPType) -> Counter? {
        switch type.rawValue {
        case 0: .outEchoReps
        case 3: .outDestUnreachs
        case 4: .outSrcQuenchs
        case 5: .outRedirects
        case 8: .outEchos
        case 11: .outTimeExcds
        case 12: .outParmProbs
        case 13: .outTimestamps
        case 14: .outTimestampReps
        case 17: .outAddrMasks
        case 18: .outAddrMaskReps
        default: nil
        }
    }

    /// `Icmp: InMsgs …\nIcmp: 3 …`, the two lines /proc/net/snmp prints.
    public func snmpLines() -> String {
        counters.snmpLines("Icmp", Array(Counter.allCases))
    }
}
