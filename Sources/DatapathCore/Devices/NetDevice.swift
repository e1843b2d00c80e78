import DatapathWire

/// A network device (Linux: `struct net_device` with its `ndo_*` operations), with one or more
/// queues. Each queue is driven by exactly one worker, so a queue's methods are single-threaded.
/// Called once per batch, never per packet, so an existential here costs nothing measurable.
public protocol NetDevice: AnyObject, Sendable {
    var name: String { get }
    /// Index in the owning device table; 0 until registered.
    var ifindex: Int { get set }
    var macAddress: MACAddress { get }
    var mtu: Int { get }
    var queueCount: Int { get }
    var stats: DeviceStats { get }
    /// Whether the device carries traffic (Linux: `IFF_UP` and carrier).
    var isUp: Bool { get }
    /// Whether the device takes GSO packets whole and segments them itself (Linux:
    /// `NETIF_F_GSO_MASK` features); without it, the stack segments in software first.
    var supportsGSO: Bool { get }
    /// Whether the device completes a transport checksum the stack left partial (Linux:
    /// `NETIF_F_HW_CSUM`): a sender then writes only the pseudo-header sum and the checksum's
    /// place (`checksumStart`/`checksumOffset`), as `__ip_append_data` picks `CHECKSUM_PARTIAL`.
    /// Read when the device registers (`NetCore.offloadsChecksum`).
    var supportsChecksumOffload: Bool { get }

    /// Receives up to `max` skbs on `queue` into `batch` (appending); returns how many.
    /// Frames that cannot become skbs are counted in `worker.drops` with a reason.
    func receive(queue: Int, into batch: inout PacketBatch, max: Int, worker: Worker) -> Int

    /// Transmits every skb in `batch` on `queue` and empties it: each skb is sent or dropped
    /// with a counted reason, and freed either way (Linux: `ndo_start_xmit`, once per batch).
    func transmit(queue: Int, _ batch: inout PacketBatch, worker: Worker)

    /// Transmits what the device has room for now and leaves the rest at the front of `batch`,
    /// in order, for the queueing discipline (Linux: `ndo_start_xmit` returning
    /// `NETDEV_TX_BUSY`). Every skb it takes is sent or dropped with a reason.
    func transmitSome(queue: Int, _ batch: inout PacketBatch, worker: Worker)

    /// A file descriptor that polls readable when `queue` has packets; nil if it has none
    /// (in-memory devices), in which case event-mode workers poll it on a short timer.
    func pollDescriptor(queue: Int) -> Int32?

    /// The link under the device as it is now (Linux: what `linkwatch` and the netdevice
    /// notifier chain report: carrier, `NETDEV_CHANGEMTU`, `NETDEV_UNREGISTER`). Asked by the
    /// stack's link monitor a few times a second, never per packet; may make a system call.
    func linkState() -> LinkState

    /// Lets frames to link-layer multicast address `mac` in (`join`) or stops asking for them
    /// (Linux: `dev_mc_add` / `dev_mc_del`). Devices that receive every frame ignore it.
    func setMulticast(_ mac: MACAddress, join: Bool)
}

/// What a device's link monitor sees (`NetDevice.linkState()`).
public struct LinkState: Sendable, Equatable, CustomStringConvertible {
    /// False once the interface under the device is gone (deleted, or moved to another
    /// namespace); it does not come back, even if one with the same name appears.
    public var exists: Bool
    /// Up with carrier (Linux: `IFF_UP` and `IFF_RUNNING`, operstate UP).
    public var carrier: Bool
    /// The MTU the medium carries now (the kernel interface's, for AF_PACKET).
    public var mtu: Int

    public init(exists: Bool = true, carrier: Bool, mtu: Int) {
        self.exists = exists
        self.carrier = carrier
        self.mtu = mtu
    }

    public var description: String {
        exists ? "\(carrier ? "up" : "down") mtu \(mtu)" : "gone"
    }
}

extension NetDevice {
    public var isUp: Bool { true }
    public var supportsGSO: Bool { false }
    public var supportsChecksumOffload: Bool { false }
    /// A device without flow control takes everything: `transmit`.
    public func transmitSome(queue: Int, _ batch: inout PacketBatch, worker: Worker) {
        transmit(queue: queue, &batch, worker: worker)
    }
    public func pollDescriptor(queue: Int) -> Int32? { nil }
    public func linkState() -> LinkState { LinkState(carrier: isUp, mtu: mtu) }
    public func setMulticast(_ mac: MACAddress, join: Bool) {}
}

/// ip-style device counters, per queue so that workers never share a cache line
/// (Linux: `struct rtnl_link_stats64`, summed over CPUs on read).
public final class DeviceStats: @unchecked Sendable {
    public enum Counter: Int, CaseIterable, Sendable {
        case rxPackets, rxBytes, rxDropped, rxErrors, txPackets, txBytes, txDropped, txErrors
    }

    let queues: [CounterBlock]

    public init(queues: Int) {
        self.queues = (0..<max(1, queues)).map { _ in CounterBlock(count: Counter.allCases.count) }
    }

    @inlinable @inline(__always)
    public func add(queue: Int, _ counter: Counter, _ amount: UInt64 = 1) {
        block(queue).add(counter.rawValue, amount)
    }

    @usableFromInline func block(_ queue: Int) -> CounterBlock { queues[queue] }

    /// The sum over queues.
    public subscript(counter: Counter) -> UInt64 {
        queues.reduce(0) { $0 &+ $1[counter.rawValue] }
    }

    public func snapshot() -> DeviceCounters {
        DeviceCounters(
            rxPackets: self[.rxPackets], rxBytes: self[.rxBytes], rxDropped: self[.rxDropped],
            rxErrors: self[.rxErrors], txPackets: self[.txPackets], txBytes: self[.txBytes],
            txDropped: self[.txDropped], txErrors: self[.txErrors])
    }
}

/// A device's counters at one moment, as `ip -s link` shows them.
public struct DeviceCounters: Sendable, Equatable {
    public var rxPackets, rxBytes, rxDropped, rxErrors: UInt64
    public var txPackets, txBytes, txDropped, txErrors: UInt64
}

extension NetDevice {
    /// The transmit queue `worker` sends on (Linux: `netdev_pick_tx` with XPS by CPU): worker
    /// `i` uses queue `i % queueCount`. With at least as many queues as workers — what the stack
    /// sets up — each worker has a queue of its own; a device with fewer queues is shared by
    /// several workers and must serialise its `transmit` itself.
    @inlinable @inline(__always)
    public func transmitQueue(for worker: Worker) -> Int { worker.index % queueCount }
}
