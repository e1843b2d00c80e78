import DatapathCore

// The stack's drop reasons, one range per subsystem (Linux: `SKB_DROP_REASON_SUBSYS_*`).
// Codes are fixed: reports and tests name reasons, and a code's meaning never changes.
// Later subsystems (raw, tcp, xfrm) take the next ids.

extension DropSubsystem {
    @inlinable public static var bond: DropSubsystem { DropSubsystem(rawValue: 1) }
    @inlinable public static var bridge: DropSubsystem { DropSubsystem(rawValue: 2) }
    @inlinable public static var neighbour: DropSubsystem { DropSubsystem(rawValue: 3) }
    @inlinable public static var ipv4: DropSubsystem { DropSubsystem(rawValue: 4) }
    @inlinable public static var icmp: DropSubsystem { DropSubsystem(rawValue: 5) }
    @inlinable public static var fragment: DropSubsystem { DropSubsystem(rawValue: 6) }
    @inlinable public static var netfilter: DropSubsystem { DropSubsystem(rawValue: 7) }
    @inlinable public static var udp: DropSubsystem { DropSubsystem(rawValue: 8) }
    @inlinable public static var raw: DropSubsystem { DropSubsystem(rawValue: 9) }
    @inlinable public static var igmp: DropSubsystem { DropSubsystem(rawValue: 10) }
}

extension DropReason {
    // MARK: bond
    /// Received on a bond slave that is not active (Linux: `RX_HANDLER_EXACT` with no taker).
    @inlinable public static var bondInactiveSlave: DropReason { DropReason(.bond, 0) }
    /// A bond had no slave with link to transmit on.
    @inlinable public static var bondNoSlave: DropReason { DropReason(.bond, 1) }

    // MARK: bridge
    /// A bridge port received a frame with a multicast or zero source MAC
    /// (`SKB_DROP_REASON_MAC_INVALID_SOURCE`).
    @inlinable public static var macInvalidSource: DropReason { DropReason(.bridge, 0) }
    /// The bridge would send the frame back out of the port it came in on (no hairpin).
    @inlinable public static var bridgeSamePort: DropReason { DropReason(.bridge, 1) }
    /// The bridge port is down, or not forwarding.
    @inlinable public static var bridgePortState: DropReason { DropReason(.bridge, 2) }

    // MARK: neighbour
    /// A malformed or unsupported ARP packet (`SKB_DROP_REASON_ARP_*` in spirit).
    @inlinable public static var arpInvalid: DropReason { DropReason(.neighbour, 0) }
    /// A neighbour's pending queue was full while resolving: the oldest packet goes
    /// (`SKB_DROP_REASON_NEIGH_QUEUEFULL`).
    @inlinable public static var neighQueueFull: DropReason { DropReason(.neighbour, 1) }
    /// Resolution failed, or the entry is FAILED (`SKB_DROP_REASON_NEIGH_FAILED`).
    @inlinable public static var neighFailed: DropReason { DropReason(.neighbour, 2) }
    /// The neighbour table was full (`SKB_DROP_REASON_NEIGH_CREATEFAIL`).
    @inlinable public static var neighCreateFailed: DropReason { DropReason(.neighbour, 3) }

    // MARK: ipv4
    /// Bad IPv4 header: version, IHL, total length below the header, malformed options
    /// (`SKB_DROP_REASON_IP_INHDR`).
    @inlinable public static var ipHeaderInvalid: DropReason { DropReason(.ipv4, 0) }
    /// IPv4 header checksum wrong (`SKB_DROP_REASON_IP_CSUM`).
    @inlinable public static var ipChecksum: DropReason { DropReason(.ipv4, 1) }
    /// Martian source: multicast, limited broadcast, 0.0.0.0 or loopback
    /// (`SKB_DROP_REASON_IP_INVALID_SOURCE`).
    @inlinable public static var ipInvalidSource: DropReason { DropReason(.ipv4, 2) }
    /// Martian destination: 0.0.0.0 or loopback (`SKB_DROP_REASON_IP_INVALID_DEST`).
    @inlinable public static var ipInvalidDestination: DropReason { DropReason(.ipv4, 3) }
    /// Source-routed (LSRR/SSRR) while source routing is off, as Linux's default
    /// `accept_source_route=0`.
    @inlinable public static var ipSourceRouted: DropReason { DropReason(.ipv4, 4) }
    /// No route to the destination, an unreachable route, or a multicast group not joined
    /// (`SKB_DROP_REASON_IP_INNOROUTES`).
    @inlinable public static var ipNoRoute: DropReason { DropReason(.ipv4, 5) }
    /// A locally generated packet had no route (`SKB_DROP_REASON_IP_OUTNOROUTES`).
    @inlinable public static var ipOutNoRoute: DropReason { DropReason(.ipv4, 6) }
    /// A prohibit route (Linux: `ip_error` with `EACCES`).
    @inlinable public static var ipProhibited: DropReason { DropReason(.ipv4, 7) }
    /// A blackhole route (Linux: `dst_discard`).
    @inlinable public static var ipBlackhole: DropReason { DropReason(.ipv4, 8) }
    /// TTL ran out while forwarding (Linux counts it as `SKB_DROP_REASON_IP_INHDR`).
    @inlinable public static var ipTTLExpired: DropReason { DropReason(.ipv4, 9) }
    /// No handler for the IP protocol (`SKB_DROP_REASON_IP_NOPROTO`).
    @inlinable public static var ipNoProtocol: DropReason { DropReason(.ipv4, 10) }
    /// Larger than the path MTU with DF set, or a fragment could not be made
    /// (`SKB_DROP_REASON_PKT_TOO_BIG` on the forward path).
    @inlinable public static var fragmentationNeeded: DropReason { DropReason(.ipv4, 11) }

    // MARK: icmp
    /// ICMP checksum wrong (`SKB_DROP_REASON_ICMP_CSUM`).
    @inlinable public static var icmpChecksum: DropReason { DropReason(.icmp, 0) }
    /// An ICMP message we do not act on: too short, or an echo request to a broadcast address
    /// (`icmp_echo_ignore_broadcasts`).
    @inlinable public static var icmpIgnored: DropReason { DropReason(.icmp, 1) }

    // MARK: fragment (reassembly)
    /// A fragment overlapping part of another: the whole datagram goes (RFC 5722's rule).
    @inlinable public static var fragOverlap: DropReason { DropReason(.fragment, 0) }
    /// An exact duplicate of a fragment already queued (`SKB_DROP_REASON_DUP_FRAG`).
    @inlinable public static var fragDuplicate: DropReason { DropReason(.fragment, 1) }
    /// A fragment reaching past 65535 bytes (`SKB_DROP_REASON_FRAG_TOO_FAR` in spirit).
    @inlinable public static var fragTooBig: DropReason { DropReason(.fragment, 2) }
    /// A fragment contradicting what is known of its datagram, or empty.
    @inlinable public static var fragInvalid: DropReason { DropReason(.fragment, 3) }
    /// Reassembly memory was at its limit (`ipfrag_high_thresh`).
    @inlinable public static var fragMemoryLimit: DropReason { DropReason(.fragment, 4) }
    /// A datagram did not complete in time (`SKB_DROP_REASON_FRAG_REASM_TIMEOUT`), counted once
    /// per datagram.
    @inlinable public static var fragReassemblyTimeout: DropReason { DropReason(.fragment, 5) }

    // MARK: netfilter
    /// A netfilter hook said NF_DROP (`SKB_DROP_REASON_NETFILTER_DROP`).
    @inlinable public static var netfilterDrop: DropReason { DropReason(.netfilter, 0) }

    // MARK: udp
    /// Shorter than a UDP header, or a length field outside the datagram
    /// (`SKB_DROP_REASON_PKT_TOO_SMALL` / `UDP_MIB_INERRORS`).
    @inlinable public static var udpHeaderInvalid: DropReason { DropReason(.udp, 0) }
    /// A UDP checksum that does not verify (`SKB_DROP_REASON_UDP_CSUM`).
    @inlinable public static var udpChecksum: DropReason { DropReason(.udp, 1) }
    /// No socket for the destination port (`SKB_DROP_REASON_NO_SOCKET`).
    @inlinable public static var udpNoSocket: DropReason { DropReason(.udp, 2) }
    /// The socket's receive queue was over its buffer (Linux: `SKB_DROP_REASON_SOCKET_RCVBUFF`).
    @inlinable public static var udpReceiveBufferFull: DropReason { DropReason(.udp, 3) }

    // MARK: raw
    /// A raw socket's receive queue was over its buffer (Linux: `raw_rcv_skb` →
    /// `SKB_DROP_REASON_SOCKET_RCVBUFF`).
    @inlinable public static var rawReceiveBufferFull: DropReason { DropReason(.raw, 0) }
    /// No buffer was free for a raw socket's copy of a packet (`SKB_DROP_REASON_NOMEM`).
    @inlinable public static var rawNoMemory: DropReason { DropReason(.raw, 1) }

    // MARK: igmp
    /// An IGMP message shorter than 8 bytes or with a bad checksum (Linux: `igmp_rcv`'s drop).
    @inlinable public static var igmpInvalid: DropReason { DropReason(.igmp, 0) }

    /// Names every reason above for reports; idempotent. `Stack.init` calls it.
    package static func registerStackReasons() {
        DropReason.register(.bond, name: "bond", reasons: [
            .bondInactiveSlave: "BOND_INACTIVE_SLAVE", .bondNoSlave: "BOND_NO_SLAVE",
        ])
        DropReason.register(.bridge, name: "bridge", reasons: [
            .macInvalidSource: "MAC_INVALID_SOURCE", .bridgeSamePort: "BRIDGE_SAME_PORT",
            .bridgePortState: "BRIDGE_PORT_STATE",
        ])
        DropReason.register(.neighbour, name: "neighbour", reasons: [
            .arpInvalid: "ARP_INVALID", .neighQueueFull: "NEIGH_QUEUEFULL", .neighFailed: "NEIGH_FAILED",
            .neighCreateFailed: "NEIGH_CREATEFAIL",
        ])
        DropReason.register(.ipv4, name: "ipv4", reasons: [
            .ipHeaderInvalid: "IP_INHDR", .ipChecksum: "IP_CSUM", .ipInvalidSource: "IP_INVALID_SOURCE",
            .ipInvalidDestination: "IP_INVALID_DEST", .ipSourceRouted: "IP_SOURCE_ROUTED",
            .ipNoRoute: "IP_INNOROUTES", .ipOutNoRoute: "IP_OUTNOROUTES", .ipProhibited: "IP_PROHIBITED",
            .ipBlackhole: "IP_BLACKHOLE", .ipTTLExpired: "IP_TTL_EXPIRED", .ipNoProtocol: "IP_NOPROTO",
            .fragmentationNeeded: "FRAG_NEEDED",
        ])
        DropReason.register(.icmp, name: "icmp", reasons: [.icmpChecksum: "ICMP_CSUM", .icmpIgnored: "ICMP_IGNORED"])
        DropReason.register(.fragment, name: "fragment", reasons: [
            .fragOverlap: "FRAG_OVERLAP", .fragDuplicate: "DUP_FRAG", .fragTooBig: "FRAG_TOO_FAR",
            .fragInvalid: "FRAG_INVALID", .fragMemoryLimit: "FRAG_MEMORY_LIMIT",
            .fragReassemblyTimeout: "FRAG_REASM_TIMEOUT",
        ])
        DropReason.register(.netfilter, name: "netfilter", reasons: [.netfilterDrop: "NETFILTER_DROP"])
        DropReason.register(.udp, name: "udp", reasons: [
            .udpHeaderInvalid: "UDP_HDR_INVALID", .udpChecksum: "UDP_CSUM", .udpNoSocket: "NO_SOCKET", .udpReceiveBufferFull: "SOCKET_RCVBUFF",
        ])
        DropReason.register(.igmp, name: "igmp", reasons: [.igmpInvalid: "IGMP_INVALID"])
        DropReason.register(.raw, name: "raw", reasons: [.rawReceiveBufferFull: "SOCKET_RCVBUFF", .rawNoMemory: "NOMEM"])
    }
}
