import CDatapath
import DatapathWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real kernel interface driven through AF_PACKET TPACKET_V3 rings: one socket per queue, the
/// sockets of one device joined in a PACKET_FANOUT group so the kernel spreads flows over the
/// queues (Linux's RSS/RPS role). Outgoing frames of the host are ignored
/// (PACKET_IGNORE_OUTGOING) and transmit bypasses the kernel's qdisc (PACKET_QDISC_BYPASS).
public final class AFPacketDevice: NetDevice, @unchecked Sendable {
    /// Ring and socket settings.
    public struct Configuration: Sendable {
        public var queues = 1
        public var rxBlockSize: UInt32 = 1 << 18
        public var rxBlockCount: UInt32 = 32
        public var rxFrameSize: UInt32 = 2048
        /// How long the kernel holds a part-filled block before handing it over.
        public var rxRetireMilliseconds: UInt32 = 1
        public var txFrameSize: UInt32 = 2048
        public var txFrameCount: UInt32 = 1024
        /// Headroom before each received frame, so headers can be pushed in place.
        public var reserve: UInt32 = 128
        public var fanout: FanoutMode = .hash
        public var promiscuous = true
        public var qdiscBypass = true
        public var receive = true
        public var transmit = true
        /// A virtio-net header with every frame (PACKET_VNET_HDR, kernel 5.8 or later for RX
        /// rings): TSO/GRO super-frames arrive whole as GSO skbs with their checksum state, and
        /// GSO skbs leave whole for the kernel to segment (through a second, transmit-only
        /// socket when larger than a TX frame). Off: a super-frame is truncated by the ring and
        /// dropped (`.truncatedFrame`), so senders need TSO off and NICs GRO off.
        public var virtioNetHeader = true
        /// Whether the kernel's own stack also processes the frames the interface receives.
        /// Off for an interface the datapath owns: a BPF program on its tcx ingress hook drops
        /// every frame after the packet taps, so the rings still get them but the kernel no
        /// longer runs `ip_rcv` on them — for an interface without a kernel address that is a
        /// route lookup, a dst allocation and its RCU free per frame, work that competed with
        /// the datapath for CPU. Needs kernel 6.6 and CAP_BPF; where it cannot attach, the
        /// device opens anyway and says why in `kernelReceiveError`. The program goes with the
        /// device (closing the link's fd detaches it, also when the process dies).
        public var kernelReceive = true

        public init() {}
    }

    /// How PACKET_FANOUT spreads packets over the queues.
    public enum FanoutMode: Sendable {
        /// By the kernel's flow hash (PACKET_FANOUT_HASH): a flow stays on one queue.
        case hash
        /// By the receiving CPU (PACKET_FANOUT_CPU).
        case cpu
    }

    /// The device's name in the datapath (`link add NAME type afpacket dev INTERFACE`).
    public let name: String
    /// The kernel interface it drives.
    public let interface: String
    /// Set once by `NetCore.register`, before workers start, and read on every batch: no
    /// dynamic exclusivity check (a class `var` pays one per access otherwise).
    @exclusivity(unchecked) public var ifindex: Int = 0
    /// The kernel's index for the interface.
    public let kernelIndex: Int
    public let macAddress: MACAddress
    /// The kernel interface's MTU as last read (when opened, then by each `linkState()`).
    public var mtu: Int { currentMTU.load(ordering: .relaxed) }
    let currentMTU: Atomic<Int>
    public let queueCount: Int
    public let stats: DeviceStats
    /// With virtio-net headers the kernel segments what the device sends.
    public let supportsGSO: Bool
    /// With virtio-net headers a partial checksum leaves as NEEDS_CSUM: the kernel (or the NIC
    /// under it) completes it.
    public let supportsChecksumOffload: Bool
    let queues: [AFPacketQueue]
    let kernelFlags: UInt32
    /// The interface's driver (ethtool's name for it), or "" where it has none to tell.
    public let driver: String
    /// With virtio-net headers, ordinary frames up to this many bytes leave copied whole into
    /// the kernel's skb (their `hdr_len` says so) instead of attached as fragments of the TX
    /// ring's pages. A fragment pins the ring frame until the driver is done with it and a
    /// veth must copy it into a fresh page anyway (`skb_orphan_frags` when the skb crosses
    /// into the peer): on a veth every frame goes whole (measured: 64-byte forwarding 1560 →
    /// 1010 ns of kernel time per packet); elsewhere frames up to 256 bytes, where one short
    /// copy should cost less than the page reference and the fragment's DMA mapping (not
    /// measured: no real NIC here; 256 is a guess to revisit on one).
    public let linearTransmitLimit: Int

    static func linearTransmitLimit(driver: String) -> Int {
        driver == "veth" ? Int.max : 256
    }

    /// The tcx link of the ingress drop program, or -1.
    let ingressDropLink: Int32
    /// Why the kernel's receive could not be turned off (`kernelReceive` false), or nil.
    public let kernelReceiveError: AFPacketError?
    /// Whether the kernel's own stack still processes the interface's frames.
    public var kernelReceives: Bool { ingressDropLink < 0 }

    static let nextFanoutGroup = Atomic<UInt32>(1)

    /// Opens `interface`'s queues. Throws an `AFPacketError` naming the interface, the failing
    /// call and the fix.
    public init(interface: String, name: String? = nil,
                configuration: Configuration = Configuration()) throws(AFPacketError) {
        var index: Int32 = 0
        var mac: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
        var mtu: Int32 = 0
        var flags: UInt32 = 0
        let rc = interface.withCString { name in
            withUnsafeMutableBytes(of: &mac) { bytes in
                CDatapath_interface_info(name, &index, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), &mtu, &flags)
            }
        }
        if rc < 0 { throw AFPacketError(interface: interface, call: "ioctl(SIOCGIFINDEX)", errno: -rc) }
        self.name = name ?? interface
        self.interface = interface
        self.kernelIndex = Int(index)
        self.macAddress = MACAddress(mac.0, mac.1, mac.2, mac.3, mac.4, mac.5)
        self.currentMTU = Atomic(Int(mtu))
        self.kernelFlags = flags
        let queueCount = max(1, configuration.queues)
        self.queueCount = queueCount
        self.stats = DeviceStats(queues: queueCount)
        self.supportsGSO = configuration.virtioNetHeader && configuration.transmit
        self.supportsChecksumOffload = supportsGSO

        var ringConfig = CDatapath_ring_config()
        if configuration.receive {
            ringConfig.rx_block_size = configuration.rxBlockSize
            ringConfig.rx_block_count = configuration.rxBlockCount
            ringConfig.rx_frame_size = configuration.rxFrameSize
            ringConfig.rx_retire_ms = configuration.rxRetireMilliseconds
        }
        if configuration.transmit {
            ringConfig.tx_frame_size = configuration.txFrameSize
            ringConfig.tx_frame_count = configuration.txFrameCount
        }
        ringConfig.reserve = configuration.reserve
        ringConfig.promiscuous = configuration.promiscuous ? 1 : 0
        ringConfig.qdisc_bypass = configuration.qdiscBypass ? 1 : 0
        ringConfig.ignore_outgoing = 1
        // The kernel's flow hash with each frame: free with several queues (PACKET_FANOUT_HASH
        // computes it to pick one); with one, asking for it runs the flow dissector on every
        // frame, and the backlog hashes a frame itself only when it has to steer it.
        ringConfig.fill_rxhash = queueCount > 1 ? 1 : 0
        ringConfig.vnet_hdr = configuration.virtioNetHeader ? 1 : 0
        if queueCount > 1 && configuration.receive {
            // Group ids are per network namespace; mix in the pid so two processes never collide.
            let group = (UInt32(getpid()) &* 31 &+ AFPacketDevice.nextFanoutGroup.add(1, ordering: .relaxed).oldValue) & 0xffff
            ringConfig.fanout_group = group == 0 ? 1 : group
            ringConfig.fanout_mode = configuration.fanout == .hash
                ? UInt32(CDatapath_FANOUT_HASH) : UInt32(CDatapath_FANOUT_CPU)
        }
        var driver = [CChar](repeating: 0, count: 32)
        _ = interface.withCString { CDatapath_interface_driver($0, &driver, UInt32(driver.count)) }
        let driverName = driver.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        self.driver = driverName
        self.linearTransmitLimit = AFPacketDevice.linearTransmitLimit(driver: driverName)
        var opened: [AFPacketQueue] = []
        for _ in 0..<queueCount {
            opened.append(try AFPacketQueue(config: ringConfig, interface: interface,
                                            linearTransmitLimit: linearTransmitLimit))
        }
        self.queues = opened
        var link: Int32 = -1
        var linkError: AFPacketError?
        if !configuration.kernelReceive {
            var failedCall: UnsafePointer<CChar>?
            let fd = CDatapath_ingress_drop_attach(index, &failedCall)
            if fd >= 0 {
                link = fd
            } else {
                linkError = AFPacketError(interface: interface, call: failedCall.map { String(cString: $0) } ?? "bpf",
                                          errno: -fd)
            }
        }
        self.ingressDropLink = link
        self.kernelReceiveError = linkError
    }

    deinit {
        if ingressDropLink >= 0 { close(ingressDropLink) }
    }

    /// Whether the kernel interface is there, up with carrier (`linkState()`): for link
    /// monitors (the bond's miimon, bridge ports), not per packet.
    public var isUp: Bool { linkState().carrier }

    /// The kernel interface's flags, MTU and index, asked now through the first queue's socket
    /// so the answer comes from the interface's network namespace (four ioctls). Carrier is
    /// IFF_UP and the driver's link (ETHTOOL_GLINK: operstate, IFF_RUNNING, lags carrier by up
    /// to a second). The interface is gone when it no longer answers to its name, or a new one
    /// with another index took the name.
    public func linkState() -> LinkState {
        var flags: UInt32 = 0
        var carrier: Int32 = 0
        var mtu: Int32 = 0
        var index: Int32 = 0
        let rc = interface.withCString { CDatapath_link_state(queues[0].fd, $0, &flags, &carrier, &mtu, &index) }
        guard rc == 0, Int(index) == kernelIndex else {
            return LinkState(exists: false, carrier: false, mtu: self.mtu)
        }
        currentMTU.store(Int(mtu), ordering: .relaxed)
        return LinkState(carrier: flags & UInt32(IFF_UP) != 0 && carrier != 0, mtu: Int(mtu))
    }

    public func receive(queue: Int, into batch: inout PacketBatch, max: Int, worker: Worker) -> Int {
        let (count, bytes) = queues[queue].receive(into: &batch, max: max, ifindex: ifindex, worker: worker)
        if count > 0 {
            stats.add(queue: queue, .rxPackets, UInt64(count))
            stats.add(queue: queue, .rxBytes, UInt64(bytes))
        }
        return count
    }

    public func transmit(queue: Int, _ batch: inout PacketBatch, worker: Worker) {
        guard !batch.isEmpty else { return }
        let (sent, bytes, dropped) = queues[queue].transmit(&batch, keepUnsent: false, worker: worker)
        stats.add(queue: queue, .txPackets, UInt64(sent))
        stats.add(queue: queue, .txBytes, UInt64(bytes))
        if dropped > 0 { stats.add(queue: queue, .txDropped, UInt64(dropped)) }
    }

    /// Fills free TX frames and kicks; packets for which the ring has no frame stay in `batch`.
    public func transmitSome(queue: Int, _ batch: inout PacketBatch, worker: Worker) {
        guard !batch.isEmpty else { return }
        let (sent, bytes, dropped) = queues[queue].transmit(&batch, keepUnsent: true, worker: worker)
        stats.add(queue: queue, .txPackets, UInt64(sent))
        stats.add(queue: queue, .txBytes, UInt64(bytes))
        if dropped > 0 { stats.add(queue: queue, .txDropped, UInt64(dropped)) }
    }

    public func pollDescriptor(queue: Int) -> Int32? { queues[queue].fd }

    /// PACKET_MR_MULTICAST on every queue's socket: the interface's filter lets the group's
    /// frames in even when the device is not promiscuous.
    public func setMulticast(_ mac: MACAddress, join: Bool) {
        var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { mac.store(to: $0.baseAddress!) }
        for queue in queues {
            _ = withUnsafeBytes(of: bytes) { raw in
                CDatapath_multicast_membership(queue.fd, Int32(kernelIndex), raw.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                               join ? 1 : 0)
            }
        }
    }

    /// Free TX frames on `queue`, counted up to `limit`: a sender that must not drop (a traffic
    /// generator) waits for room instead of letting `transmit` count ring-full drops.
    public func transmitSpace(queue: Int, limit: Int) -> Int {
        queues[queue].freeTransmitFrames(limit: limit)
    }

    /// Kicks the kernel until every submitted TX frame on every queue is sent, or `timeout`
    /// passes; returns whether all were sent.
    @discardableResult
    public func flushTransmit(timeout: Duration = .seconds(2)) -> Bool {
        let deadline = CDatapath_monotonic_ns() &+ timeout.nanoseconds
        while true {
            var pending = 0
            for queue in queues {
                let n = queue.pendingTransmitFrames()
                if n > 0 { queue.kick() }
                pending += n
            }
            if pending == 0 { return true }
            if CDatapath_monotonic_ns() > deadline { return false }
            usleep(200)
        }
    }

    /// Frames the kernel dropped because the RX ring was full, since the last call, summed
    /// over queues (PACKET_STATISTICS); also added to `stats` as rx_dropped.
    @discardableResult
    public func collectKernelDrops() -> UInt64 {
        var total: UInt64 = 0
        for (i, queue) in queues.enumerated() {
            let drops = UInt64(queue.kernelStatistics().drops)
            stats.add(queue: i, .rxDropped, drops)
            total += drops
        }
        return total
    }
}
