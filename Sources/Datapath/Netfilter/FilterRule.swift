import DatapathCore
import DatapathWire

/// What a filter rule does with a packet it matches (iptables targets).
public enum FilterVerdict: Equatable, Sendable, CustomStringConvertible {
    case accept
    case drop
    /// Drop and answer with an ICMP destination unreachable of this code (iptables `REJECT
    /// --reject-with`; default port unreachable). From the output hook it only drops.
    case reject(code: ICMPCode)

    public var description: String {
        switch self {
        case .accept: "accept"
        case .drop: "drop"
        case .reject(let code): code == ICMPCode.DestinationUnreachable.port ? "reject" : "reject with \(FilterVerdict.rejectNames.first { $0.1 == code }?.0 ?? code.description)"
        }
    }

    /// `reject with NAME` codes, as iptables names them.
    public static let rejectNames: [(String, ICMPCode)] = [
        ("icmp-net-unreachable", 0), ("icmp-host-unreachable", 1), ("icmp-proto-unreachable", 2),
        ("icmp-port-unreachable", 3), ("icmp-net-prohibited", 9), ("icmp-host-prohibited", 10),
        ("icmp-admin-prohibited", 13),
    ]
}

/// A rule as the command language gives it: devices by name (`filter add forward iif eth0
/// proto udp dport 9 drop`).
public struct FilterRuleSpec: Equatable, Sendable {
    public var hook: NetfilterHook
    public var inputDevice: String?
    public var outputDevice: String?
    public var source: IPv4Prefix?
    public var destination: IPv4Prefix?
    public var ipProtocol: IPProtocol?
    public var sourcePorts: ClosedRange<UInt16>?
    public var destinationPorts: ClosedRange<UInt16>?
    public var icmpType: ICMPType?
    /// Matches fragments other than the first (iptables `-f`).
    package var laterFragment = false
    public var verdict: FilterVerdict

    public init(hook: NetfilterHook, verdict: FilterVerdict) {
        self.hook = hook
        self.verdict = verdict
    }

    /// The filter table's hooks (iptables' filter table has these three).
    public static let hooks: [NetfilterHook] = [.localIn, .forward, .localOut]
}

/// A rule ready to match: devices as ifindexes, prefixes as masks; with its packet and byte
/// counters per worker (iptables `-v` counters).
package final class FilterRule: @unchecked Sendable, CustomStringConvertible {
    public let spec: FilterRuleSpec
    /// The rule as plain values, for the per-packet scan.
    let match: FilterMatch
    let counters: WorkerLocal<CounterBlock>

    init(spec: FilterRuleSpec, inputIfindex: Int, outputIfindex: Int, workers: Int) {
        self.spec = spec
        match = FilterMatch(spec, inputIfindex: inputIfindex, outputIfindex: outputIfindex)
        counters = WorkerLocal(workers: max(1, workers)) { _ in CounterBlock(count: 2) }
    }

    /// Packets and bytes matched, summed over workers.
    public var packets: UInt64 { counters.reduce(0) { $0 &+ $1[0] } }
    public var bytes: UInt64 { counters.reduce(0) { $0 &+ $1[1] } }

    /// `filter add forward iif eth0 proto udp dport 9 drop`, as it was written (devices by name).
    public var description: String {
        var words = ["filter add", spec.hook.description.lowercased()]
        if let device = spec.inputDevice { words += ["iif", device] }
        if let device = spec.outputDevice { words += ["oif", device] }
        if let prefix = spec.source { words += ["src", "\(prefix)"] }
        if let prefix = spec.destination { words += ["dst", "\(prefix)"] }
        if let number = spec.ipProtocol {
            words += ["proto", [1: "icmp", 6: "tcp", 17: "udp"][number.rawValue] ?? String(number.rawValue)]
        }
        func ports(_ range: ClosedRange<UInt16>) -> String {
            range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)"
        }
        if let range = spec.sourcePorts { words += ["sport", ports(range)] }
        if let range = spec.destinationPorts { words += ["dport", ports(range)] }
        if let type = spec.icmpType { words += ["icmp-type", String(type.rawValue)] }
        if spec.laterFragment { words.append("fragment") }
        words.append(spec.verdict.description)
        return words.joined(separator: " ")
    }
}

/// A rule's match as plain values (no references): a rule list scans an array of these without
/// retaining anything. "Any" is the full range, a zero mask, or −1.
struct FilterMatch: Sendable {
    var inputIfindex: Int32
    var outputIfindex: Int32
    var sourceMask: UInt32, sourceValue: UInt32
    var destinationMask: UInt32, destinationValue: UInt32
    var protocolNumber: Int16
    var icmpType: Int16
    var sourcePorts: (UInt16, UInt16)
    var destinationPorts: (UInt16, UInt16)
    var needsPorts: Bool
    var laterFragment: Bool

    init(_ spec: FilterRuleSpec, inputIfindex: Int, outputIfindex: Int) {
        self.inputIfindex = Int32(inputIfindex)
        self.outputIfindex = Int32(outputIfindex)
        sourceMask = spec.source.map { IPv4Prefix.maskBits($0.length) } ?? 0
        sourceValue = spec.source?.address.hostOrder ?? 0
        destinationMask = spec.destination.map { IPv4Prefix.maskBits($0.length) } ?? 0
        destinationValue = spec.destination?.address.hostOrder ?? 0
        protocolNumber = spec.ipProtocol.map { Int16($0.rawValue) } ?? -1
        icmpType = spec.icmpType.map { Int16($0.rawValue) } ?? -1
        sourcePorts = spec.sourcePorts.map { ($0.lowerBound, $0.upperBound) } ?? (0, 0xFFFF)
        destinationPorts = spec.destinationPorts.map { ($0.lowerBound, $0.upperBound) } ?? (0, 0xFFFF)
        needsPorts = spec.sourcePorts != nil || spec.destinationPorts != nil
        laterFragment = spec.laterFragment
    }

    @inline(__always)
    func matches(_ p: FilterFields) -> Bool {
        if inputIfindex != 0 && p.inputIfindex != inputIfindex { return false }
        if outputIfindex != 0 && p.outputIfindex != outputIfindex { return false }
        if p.source & sourceMask != sourceValue || p.destination & destinationMask != destinationValue { return false }
        if protocolNumber >= 0 && Int16(p.protocolNumber) != protocolNumber { return false }
        if laterFragment && !p.isLaterFragment { return false }
        if needsPorts {
            guard p.hasPorts, p.sourcePort >= sourcePorts.0, p.sourcePort <= sourcePorts.1,
                  p.destinationPort >= destinationPorts.0, p.destinationPort <= destinationPorts.1 else { return false }
        }
        if icmpType >= 0 && (!p.hasICMPType || Int16(p.icmpType) != icmpType) { return false }
        return true
    }
}

/// The fields of one packet rules look at, read once per packet from its IPv4 header (and
/// the transport header of a first or only fragment).
struct FilterFields {
    var inputIfindex: Int32
    var outputIfindex: Int32
    var source: UInt32
    var destination: UInt32
    var protocolNumber: UInt8
    var isLaterFragment: Bool
    var hasPorts = false
    var hasICMPType = false
    var sourcePort: UInt16 = 0
    var destinationPort: UInt16 = 0
    var icmpType: UInt8 = 0

    @inline(__always)
    init(_ skb: SKB, hook: NetfilterHook) {
        unsafe self.init(ip: skb.data, length: skb.length,
                  inputIfindex: hook == .localOut ? 0 : Int32(truncatingIfNeeded: skb.inputIfindex),
                  outputIfindex: hook == .localIn ? 0 : Int32(truncatingIfNeeded: skb.outputIfindex))
    }

    /// The fields of the IPv4 packet at `ip`, `length` bytes long, between the given devices.
    @inline(__always)
    init(ip: UnsafeMutableRawPointer, length: Int, inputIfindex: Int32, outputIfindex: Int32) {
        self.inputIfindex = inputIfindex
        self.outputIfindex = outputIfindex
        let header = unsafe IPv4Header(unchecked: ip)
        source = header.source.hostOrder
        destination = header.destination.hostOrder
        protocolNumber = header.protocol.rawValue
        isLaterFragment = header.fragmentOffset != 0
        let headerLength = header.headerLength
        let available = length - headerLength
        guard !isLaterFragment else { return }
        switch protocolNumber {
        // One `where` per pattern: a `where` after a list guards only its last pattern, and a
        // TCP or UDP header cut short must not be read.
        case 6 where available >= 4, 17 where available >= 4, 132 where available >= 4:
            hasPorts = true
            // TCP, UDP and SCTP all start with the two ports (UDP's view reads them).
            let ports = unsafe UDPHeader(unchecked: header.payload)
            sourcePort = ports.sourcePort
            destinationPort = ports.destinationPort
        case 1 where available >= 1:
            hasICMPType = true
            icmpType = unsafe ICMPHeader(unchecked: header.payload).type.rawValue
        default:
            break
        }
    }
}
