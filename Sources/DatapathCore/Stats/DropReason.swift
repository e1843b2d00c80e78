/// Why an skb was dropped (Linux: `enum skb_drop_reason`). Every drop names one, and every
/// reason is counted per worker, so a test can assert on the counter rather than on silence.
/// Later subsystems add their cases here, as the kernel keeps one list.
public enum DropReason: UInt16, CaseIterable, Sendable, CustomStringConvertible {
    case notSpecified = 0
    /// No handler for the EtherType (`SKB_DROP_REASON_UNHANDLED_PROTO`).
    case unhandledProtocol
    /// Shorter than an Ethernet header (`SKB_DROP_REASON_PKT_TOO_SMALL`).
    case packetTooSmall
    /// The pool had no element for a copy or clone (`SKB_DROP_REASON_NOMEM`).
    case noMemory
    /// A cross-CPU backlog ring was full (`SKB_DROP_REASON_CPU_BACKLOG`).
    case cpuBacklog
    /// The device had no room: no free TX ring frame, or a full send buffer for a frame larger
    /// than one (`SKB_DROP_REASON_DEV_READY` / qdisc full).
    case transmitRingFull
    /// Larger than the TX frame or the device MTU (`SKB_DROP_REASON_PKT_TOO_BIG`).
    case packetTooBig
    /// The device is down or not transmitting (`SKB_DROP_REASON_DEV_READY`).
    case deviceDown
    /// The device's queueing discipline was full (`SKB_DROP_REASON_QDISC_DROP`).
    case qdiscDrop
    /// An rx_handler consumed and discarded the frame (e.g. a bond's inactive slave).
    case rxHandlerDrop
    /// Addressed to another host on a non-promiscuous path (`SKB_DROP_REASON_OTHERHOST`).
    case otherHost
    /// Truncated by the ring's snap length: the kernel gave us less than the frame.
    case truncatedFrame
    /// The kernel rejected a TX frame (`TP_STATUS_WRONG_FORMAT`).
    case transmitWrongFormat
    /// Received on a bond slave that is not active (Linux: `RX_HANDLER_EXACT` with no taker).
    case bondInactiveSlave
    /// A bond had no slave with link to transmit on.
    case bondNoSlave
    /// A bridge port received a frame with a multicast or zero source MAC
    /// (`SKB_DROP_REASON_MAC_INVALID_SOURCE`).
    case macInvalidSource
    /// The bridge would send the frame back out of the port it came in on (no hairpin).
    case bridgeSamePort
    /// The bridge port is down, or not forwarding.
    case bridgePortState
    /// A malformed or unsupported ARP packet (`SKB_DROP_REASON_ARP_*` in spirit).
    case arpInvalid
    /// A neighbour's pending queue was full while resolving: the oldest packet goes
    /// (`SKB_DROP_REASON_NEIGH_QUEUEFULL`).
    case neighQueueFull
    /// Resolution failed, or the entry is FAILED (`SKB_DROP_REASON_NEIGH_FAILED`).
    case neighFailed
    /// The neighbour table was full (`SKB_DROP_REASON_NEIGH_CREATEFAIL`).
    case neighCreateFailed
    /// Bad IPv4 header: version, IHL, total length below the header, malformed options
    /// (`SKB_DROP_REASON_IP_INHDR`).
    case ipHeaderInvalid
    /// IPv4 header checksum wrong (`SKB_DROP_REASON_IP_CSUM`).
    case ipChecksum
    /// Martian source: multicast, limited broadcast, 0.0.0.0 or loopback
    /// (`SKB_DROP_REASON_IP_INVALID_SOURCE`).
    case ipInvalidSource
    /// Martian destination: 0.0.0.0 or loopback (`SKB_DROP_REASON_IP_INVALID_DEST`).
    case ipInvalidDestination
    /// Source-routed (LSRR/SSRR) while source routing is off, as Linux's default
    /// `accept_source_route=0`.
    case ipSourceRouted
    /// A netfilter hook said NF_DROP (`SKB_DROP_REASON_NETFILTER_DROP`).
    case netfilterDrop
    /// No route to the destination, an unreachable route, or a multicast group not joined
    /// (`SKB_DROP_REASON_IP_INNOROUTES`).
    case ipNoRoute
    /// A locally generated packet had no route (`SKB_DROP_REASON_IP_OUTNOROUTES`).
    case ipOutNoRoute
    /// A prohibit route (Linux: `ip_error` with `EACCES`).
    case ipProhibited
    /// A blackhole route (Linux: `dst_discard`).
    case ipBlackhole
    /// TTL ran out while forwarding (Linux counts it as `SKB_DROP_REASON_IP_INHDR`).
    case ipTTLExpired
    /// No handler for the IP protocol (`SKB_DROP_REASON_IP_NOPROTO`).
    case ipNoProtocol
    /// Larger than the path MTU with DF set, or a fragment could not be made
    /// (`SKB_DROP_REASON_PKT_TOO_BIG` on the forward path).
    case fragmentationNeeded
    /// ICMP checksum wrong (`SKB_DROP_REASON_ICMP_CSUM`).
    case icmpChecksum
    /// An ICMP message we do not act on: too short, or an echo request to a broadcast address
    /// (`icmp_echo_ignore_broadcasts`).
    case icmpIgnored
    /// A fragment overlapping part of another: the whole datagram goes (RFC 5722's rule).
    case fragOverlap
    /// An exact duplicate of a fragment already queued (`SKB_DROP_REASON_DUP_FRAG`).
    case fragDuplicate
    /// A fragment reaching past 65535 bytes (`SKB_DROP_REASON_FRAG_TOO_FAR` in spirit).
    case fragTooBig
    /// A fragment contradicting what is known of its datagram, or empty.
    case fragInvalid
    /// Reassembly memory was at its limit (`ipfrag_high_thresh`).
    case fragMemoryLimit
    /// A datagram did not complete in time (`SKB_DROP_REASON_FRAG_REASM_TIMEOUT`), counted once
    /// per datagram.
    case fragReassemblyTimeout
    /// A GSO packet that could not be segmented (not IPv4 TCP or UDP, headers cut short, too
    /// many segments, no pool memory), or that a device cannot describe to the kernel
    /// (`SKB_DROP_REASON_SKB_GSO_SEG`).
    case gsoSegmentation
    /// The kernel refused to send a frame (a send error other than a full ring).
    case transmitError

    public var description: String {
        switch self {
        case .notSpecified: "NOT_SPECIFIED"
        case .unhandledProtocol: "UNHANDLED_PROTO"
        case .packetTooSmall: "PKT_TOO_SMALL"
        case .noMemory: "NOMEM"
        case .cpuBacklog: "CPU_BACKLOG"
        case .transmitRingFull: "TX_RING_FULL"
        case .packetTooBig: "PKT_TOO_BIG"
        case .deviceDown: "DEV_READY"
        case .qdiscDrop: "QDISC_DROP"
        case .rxHandlerDrop: "RX_HANDLER_DROP"
        case .otherHost: "OTHERHOST"
        case .truncatedFrame: "TRUNCATED_FRAME"
        case .transmitWrongFormat: "TX_WRONG_FORMAT"
        case .bondInactiveSlave: "BOND_INACTIVE_SLAVE"
        case .bondNoSlave: "BOND_NO_SLAVE"
        case .macInvalidSource: "MAC_INVALID_SOURCE"
        case .bridgeSamePort: "BRIDGE_SAME_PORT"
        case .bridgePortState: "BRIDGE_PORT_STATE"
        case .arpInvalid: "ARP_INVALID"
        case .neighQueueFull: "NEIGH_QUEUEFULL"
        case .neighFailed: "NEIGH_FAILED"
        case .neighCreateFailed: "NEIGH_CREATEFAIL"
        case .ipHeaderInvalid: "IP_INHDR"
        case .ipChecksum: "IP_CSUM"
        case .ipInvalidSource: "IP_INVALID_SOURCE"
        case .ipInvalidDestination: "IP_INVALID_DEST"
        case .ipSourceRouted: "IP_SOURCE_ROUTED"
        case .netfilterDrop: "NETFILTER_DROP"
        case .ipNoRoute: "IP_INNOROUTES"
        case .ipOutNoRoute: "IP_OUTNOROUTES"
        case .ipProhibited: "IP_PROHIBITED"
        case .ipBlackhole: "IP_BLACKHOLE"
        case .ipTTLExpired: "IP_TTL_EXPIRED"
        case .ipNoProtocol: "IP_NOPROTO"
        case .fragmentationNeeded: "FRAG_NEEDED"
        case .icmpChecksum: "ICMP_CSUM"
        case .icmpIgnored: "ICMP_IGNORED"
        case .fragOverlap: "FRAG_OVERLAP"
        case .fragDuplicate: "DUP_FRAG"
        case .fragTooBig: "FRAG_TOO_FAR"
        case .fragInvalid: "FRAG_INVALID"
        case .fragMemoryLimit: "FRAG_MEMORY_LIMIT"
        case .fragReassemblyTimeout: "FRAG_REASM_TIMEOUT"
        case .gsoSegmentation: "SKB_GSO_SEG"
        case .transmitError: "TX_ERROR"
        }
    }
}
