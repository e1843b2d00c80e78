import Synchronization

/// A subsystem's range of drop reasons (Linux: `enum skb_drop_reason_subsys`, the high bits
/// of a drop reason). Core declares its own; each subsystem above it declares its id here as
/// an open constant in its own module and registers the names of its reasons
/// (`DropReason.register`), so Core never lists the stack's reasons and new subsystems (UDP,
/// TCP, xfrm) never touch another's range.
public struct DropSubsystem: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt8

    @inlinable public init(rawValue: UInt8) {
        precondition(Int(rawValue) < DropSubsystem.maximumCount, "drop subsystem \(rawValue) out of range")
        self.rawValue = rawValue
    }

    /// Subsystems there may be, and reasons each may declare: the counter space per worker.
    @inlinable public static var maximumCount: Int { 16 }
    @inlinable public static var reasonsPerSubsystem: Int { 64 }

    /// Core's own reasons: devices, rings, pools, backlog, qdisc, GSO.
    @inlinable public static var core: DropSubsystem { DropSubsystem(rawValue: 0) }
}

/// Why an skb was dropped (Linux: `enum skb_drop_reason`). Every drop names one, and every
/// reason is counted per worker, so a test can assert on the counter rather than on silence.
///
/// A reason is its subsystem and a code within that subsystem's range of
/// `DropSubsystem.reasonsPerSubsystem`; a code out of range is a precondition failure when
/// the reason is made, so a counter index can never fall outside its block. Reasons are
/// `@inlinable` static properties that fold to constants.
public struct DropReason: RawRepresentable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// `subsystem << 6 | code`: the reason's counter index.
    public let rawValue: UInt16

    @inlinable public init(rawValue: UInt16) {
        precondition(Int(rawValue) < DropReason.capacity, "drop reason \(rawValue) out of range")
        self.rawValue = rawValue
    }

    @inlinable public init(_ subsystem: DropSubsystem, _ code: Int) {
        precondition(code >= 0 && code < DropSubsystem.reasonsPerSubsystem,
                     "drop reason code \(code) out of its subsystem's range")
        rawValue = UInt16(subsystem.rawValue) << 6 | UInt16(code)
    }

    /// Counters a worker keeps: every code of every subsystem.
    @inlinable public static var capacity: Int { DropSubsystem.maximumCount * DropSubsystem.reasonsPerSubsystem }

    public var subsystem: DropSubsystem { DropSubsystem(rawValue: UInt8(rawValue >> 6)) }
    public var code: Int { Int(rawValue & 63) }

    /// The registered name (Linux's `SKB_DROP_REASON_*` without the prefix), or
    /// `subsystem#code` for a reason no one registered.
    public var description: String {
        DropReason.registry.withLock { registry in
            if let name = registry.names[rawValue] { return name }
            let subsystem = registry.subsystems[self.subsystem.rawValue] ?? "subsystem\(self.subsystem.rawValue)"
            return "\(subsystem)#\(code)"
        }
    }

    /// Every registered reason, Core's first, in counter order.
    public static var allCases: [DropReason] {
        registry.withLock { $0.names.keys.sorted().map(DropReason.init(rawValue:)) }
    }

    struct Registry {
        var subsystems: [UInt8: String] = [:]
        var names: [UInt16: String] = [:]
    }

    static let registry: Lock<Registry> = {
        var registry = Registry()
        registry.subsystems[DropSubsystem.core.rawValue] = "core"
        for (reason, name) in DropReason.coreNames { registry.names[reason.rawValue] = name }
        return Lock(registry)
    }()

    /// Names a subsystem and its reasons, for reports (`DropReason.allCases`, `description`).
    /// Idempotent for the same names; a subsystem id taken by another name, or a reason outside
    /// `subsystem`, is a precondition failure. Counting works without it.
    public static func register(_ subsystem: DropSubsystem, name: String, reasons: KeyValuePairs<DropReason, String>) {
        registry.withLock { registry in
            if let existing = registry.subsystems[subsystem.rawValue] {
                precondition(existing == name, "drop subsystem \(subsystem.rawValue) is \(existing), not \(name)")
            }
            registry.subsystems[subsystem.rawValue] = name
            for (reason, reasonName) in reasons {
                precondition(reason.subsystem == subsystem, "\(reasonName) is not in subsystem \(name)")
                registry.names[reason.rawValue] = reasonName
            }
        }
    }
}

// MARK: Core's reasons

extension DropReason {
    @inlinable public static var notSpecified: DropReason { DropReason(.core, 0) }
    /// No handler for the EtherType (`SKB_DROP_REASON_UNHANDLED_PROTO`).
    @inlinable public static var unhandledProtocol: DropReason { DropReason(.core, 1) }
    /// Shorter than an Ethernet header (`SKB_DROP_REASON_PKT_TOO_SMALL`).
    @inlinable public static var packetTooSmall: DropReason { DropReason(.core, 2) }
    /// The pool had no element for a copy or clone (`SKB_DROP_REASON_NOMEM`).
    @inlinable public static var noMemory: DropReason { DropReason(.core, 3) }
    /// A cross-CPU backlog ring was full (`SKB_DROP_REASON_CPU_BACKLOG`).
    @inlinable public static var cpuBacklog: DropReason { DropReason(.core, 4) }
    /// The device had no room: no free TX ring frame, or a full send buffer for a frame larger
    /// than one (`SKB_DROP_REASON_DEV_READY` / qdisc full).
    @inlinable public static var transmitRingFull: DropReason { DropReason(.core, 5) }
    /// Larger than the TX frame or the device MTU (`SKB_DROP_REASON_PKT_TOO_BIG`).
    @inlinable public static var packetTooBig: DropReason { DropReason(.core, 6) }
    /// The device is down, has no carrier, or is gone (`SKB_DROP_REASON_DEV_READY`).
    @inlinable public static var deviceDown: DropReason { DropReason(.core, 7) }
    /// The device's queueing discipline was full (`SKB_DROP_REASON_QDISC_DROP`).
    @inlinable public static var qdiscDrop: DropReason { DropReason(.core, 8) }
    /// An rx_handler consumed and discarded the frame.
    @inlinable public static var rxHandlerDrop: DropReason { DropReason(.core, 9) }
    /// Addressed to another host on a non-promiscuous path (`SKB_DROP_REASON_OTHERHOST`).
    @inlinable public static var otherHost: DropReason { DropReason(.core, 10) }
    /// Truncated by the ring's snap length: the kernel gave us less than the frame.
    @inlinable public static var truncatedFrame: DropReason { DropReason(.core, 11) }
    /// The kernel rejected a TX frame (`TP_STATUS_WRONG_FORMAT`).
    @inlinable public static var transmitWrongFormat: DropReason { DropReason(.core, 12) }
    /// A GSO packet that could not be segmented (not IPv4 TCP or UDP, headers cut short, too
    /// many segments, no pool memory), or that a device cannot describe to the kernel
    /// (`SKB_DROP_REASON_SKB_GSO_SEG`).
    @inlinable public static var gsoSegmentation: DropReason { DropReason(.core, 13) }
    /// The kernel refused to send a frame (a send error other than a full ring).
    @inlinable public static var transmitError: DropReason { DropReason(.core, 14) }

    static let coreNames: KeyValuePairs<DropReason, String> = [
        .notSpecified: "NOT_SPECIFIED", .unhandledProtocol: "UNHANDLED_PROTO", .packetTooSmall: "PKT_TOO_SMALL",
        .noMemory: "NOMEM", .cpuBacklog: "CPU_BACKLOG", .transmitRingFull: "TX_RING_FULL",
        .packetTooBig: "PKT_TOO_BIG", .deviceDown: "DEV_READY", .qdiscDrop: "QDISC_DROP",
        .rxHandlerDrop: "RX_HANDLER_DROP", .otherHost: "OTHERHOST", .truncatedFrame: "TRUNCATED_FRAME",
        .transmitWrongFormat: "TX_WRONG_FORMAT", .gsoSegmentation: "SKB_GSO_SEG", .transmitError: "TX_ERROR",
    ]
}
