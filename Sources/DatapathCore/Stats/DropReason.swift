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
    /// The device's TX ring had no free frame (`SKB_DROP_REASON_DEV_READY` / qdisc full).
    case transmitRingFull
    /// Larger than the TX frame or the device MTU (`SKB_DROP_REASON_PKT_TOO_BIG`).
    case packetTooBig
    /// The device is down or not transmitting (`SKB_DROP_REASON_DEV_READY`).
    case deviceDown
    /// An rx_handler consumed and discarded the frame (e.g. a bond's inactive slave).
    case rxHandlerDrop
    /// Addressed to another host on a non-promiscuous path (`SKB_DROP_REASON_OTHERHOST`).
    case otherHost
    /// Truncated by the ring's snap length: the kernel gave us less than the frame.
    case truncatedFrame
    /// The kernel rejected a TX frame (`TP_STATUS_WRONG_FORMAT`).
    case transmitWrongFormat

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
        case .rxHandlerDrop: "RX_HANDLER_DROP"
        case .otherHost: "OTHERHOST"
        case .truncatedFrame: "TRUNCATED_FRAME"
        case .transmitWrongFormat: "TX_WRONG_FORMAT"
        }
    }
}
