import CDatapath
#if canImport(Glibc)
import Glibc
#endif
import DatapathWire

/// An in-memory device for unit tests and benchmarks: packets transmitted on it arrive, without
/// a copy, on its peer's receive queue (a veth pair without the kernel). Frames can also be
/// injected straight into its receive queue. Each queue is an SPSC ring: one transmitting
/// worker, one receiving worker.
public final class MemoryDevice: NetDevice, @unchecked Sendable {
    public let name: String
    /// Set once by `NetCore.register`, before workers start, and read on every batch: no
    /// dynamic exclusivity check (a class `var` pays one per access otherwise).
    @exclusivity(unchecked) public var ifindex: Int = 0
    public let macAddress: MACAddress
    public let mtu: Int
    public let queueCount: Int
    public let stats: DeviceStats
    let receiveRings: [SPSCRing]
    /// The device this one transmits to; nil drops what it transmits (counted).
    public weak var peer: MemoryDevice?
    let carrierFlag = SharedFlag(true)

    /// Carrier, as a link monitor sees it: tests pull the cable by setting it false.
    public var carrier: Bool {
        get { carrierFlag.value }
        set { carrierFlag.value = newValue }
    }

    public var isUp: Bool { carrier }

    /// Whether it takes GSO packets whole (as a device with segmentation offload would); set
    /// before traffic flows. Off: the stack segments them in software first.
    public var supportsGSO: Bool {
        get { gsoFlag.value }
        set { gsoFlag.value = newValue }
    }
    let gsoFlag = SharedFlag(false)

    /// Whether it takes partial checksums (as a NIC with checksum offload does; the frames it
    /// carries then hold only the pseudo-header sum, which the stack's receive trusts as a
    /// local sender's). Set before the device registers. Off: senders complete checksums.
    public var supportsChecksumOffload = false

    public init(name: String, macAddress: MACAddress, mtu: Int = 1500, queues: Int = 1, ringSize: Int = 1024) {
        self.name = name
        self.macAddress = macAddress
        self.mtu = mtu
        self.queueCount = queues
        self.stats = DeviceStats(queues: queues)
        self.receiveRings = (0..<queues).map { _ in SPSCRing(capacity: ringSize) }
    }

    /// Two devices joined back to back.
    public static func pair(_ a: String, _ macA: MACAddress, _ b: String, _ macB: MACAddress,
                            queues: Int = 1, ringSize: Int = 1024) -> (MemoryDevice, MemoryDevice) {
        let first = MemoryDevice(name: a, macAddress: macA, queues: queues, ringSize: ringSize)
        let second = MemoryDevice(name: b, macAddress: macB, queues: queues, ringSize: ringSize)
        first.peer = second
        second.peer = first
        return (first, second)
    }

    /// Puts an skb on receive queue `queue` as if the wire delivered it; false when full
    /// (the skb is then still the caller's).
    @discardableResult
    public func inject(_ skb: SKB, queue: Int = 0) -> Bool {
        receiveRings[queue].enqueue(UnsafeMutableRawPointer(skb.head))
    }

    /// Puts every skb of `batch` on receive queue `queue` and empties the batch; returns how
    /// many fitted. Those that did not stay at the front of `batch`, still the caller's.
    @discardableResult
    public func inject(_ batch: inout PacketBatch, queue: Int = 0) -> Int {
        let count = batch.count
        let taken = batch.slots.withMemoryRebound(to: UnsafeMutableRawPointer.self, capacity: count) {
            receiveRings[queue].enqueueBurst($0, count: count)
        }
        if taken < count { (batch.slots).update(from: batch.slots + taken, count: count - taken) }
        batch.count = count - taken
        return taken
    }

    /// Packets waiting on a receive queue.
    public func pending(queue: Int = 0) -> Int { receiveRings[queue].count }

    public func receive(queue: Int, into batch: inout PacketBatch, max: Int, worker: Worker) -> Int {
        let room = Swift.min(max, batch.capacity - batch.count)
        guard room > 0 else { return 0 }
        let got = (batch.slots + batch.count).withMemoryRebound(to: UnsafeMutableRawPointer.self, capacity: room) {
            receiveRings[queue].dequeueBurst(into: $0, max: room)
        }
        var bytes = 0
        for i in batch.count..<(batch.count + got) {
            batch[i].inputIfindex = ifindex
            bytes &+= batch[i].length
        }
        batch.count += got
        stats.add(queue: queue, .rxPackets, UInt64(got))
        stats.add(queue: queue, .rxBytes, UInt64(bytes))
        return got
    }

    public func transmit(queue: Int, _ batch: inout PacketBatch, worker: Worker) {
        transmitSome(queue: queue, &batch, worker: worker)
        stats.add(queue: queue, .txDropped, UInt64(batch.count))
        worker.drop(&batch, .transmitRingFull)
    }

    /// Puts what fits on the peer's receive ring; the rest stays in `batch`.
    public func transmitSome(queue: Int, _ batch: inout PacketBatch, worker: Worker) {
        guard let peer else {
            stats.add(queue: queue, .txDropped, UInt64(batch.count))
            worker.drop(&batch, .deviceDown)
            return
        }
        var bytes = 0
        for i in batch.indices { bytes &+= batch[i].length }
        let sent = peer.inject(&batch, queue: queue % peer.queueCount)
        // What did not fit is left at the front of `batch`.
        for i in batch.indices { bytes &-= batch[i].length }
        stats.add(queue: queue, .txPackets, UInt64(sent))
        stats.add(queue: queue, .txBytes, UInt64(bytes))
    }
}

/// The loopback device (Linux: `lo`, `loopback_xmit` → `netif_rx`): what it transmits it
/// receives. One ring per queue, written and read by the same worker (queue q is worker q's
/// in `transmitQueue(for:)` and in `WorkerGroup.pollAllQueues`), each with an eventfd in the
/// worker's poll set, rung when a transmit leaves frames behind — a worker that loops a
/// packet back to itself does not sleep on it.
package final class LoopbackDevice: NetDevice, @unchecked Sendable {
    public let name = "lo"
    /// As Linux's lo (`NETIF_F_HW_CSUM`): what it carries never leaves the host, and receive
    /// trusts a partial checksum.
    public let supportsChecksumOffload = true
    /// Set once by `NetCore.register`, before workers start, and read on every batch: no
    /// dynamic exclusivity check (a class `var` pays one per access otherwise).
    @exclusivity(unchecked) public var ifindex: Int = 0
    public let macAddress = MACAddress.zero
    public let mtu: Int
    public let queueCount: Int
    public let stats: DeviceStats
    let rings: [SPSCRing]
    let bells: [Int32]

    public init(mtu: Int = 65536, ringSize: Int = 1024, queues: Int = 1) {
        self.mtu = mtu
        queueCount = max(1, queues)
        stats = DeviceStats(queues: queueCount)
        rings = (0..<queueCount).map { _ in SPSCRing(capacity: ringSize) }
        bells = (0..<queueCount).map { _ in CDatapath_eventfd_open() }
    }

    deinit {
        for fd in bells where fd >= 0 { Glibc.close(fd) }
    }

    public func pollDescriptor(queue: Int) -> Int32? { bells[queue] >= 0 ? bells[queue] : nil }

    /// Frames waiting on `queue`.
    public func pending(queue: Int = 0) -> Int { rings[queue].count }

    public func receive(queue: Int, into batch: inout PacketBatch, max: Int, worker: Worker) -> Int {
        let room = Swift.min(max, batch.capacity - batch.count)
        guard room > 0 else { return 0 }
        // Cleared before the ring is read: a transmit after this rings again.
        if bells[queue] >= 0 { CDatapath_eventfd_clear(bells[queue]) }
        let got = (batch.slots + batch.count).withMemoryRebound(to: UnsafeMutableRawPointer.self, capacity: room) {
            rings[queue].dequeueBurst(into: $0, max: room)
        }
        // A multicast or broadcast's local copy comes in on the device it was sent by.
        for i in batch.count..<(batch.count + got) where batch[i].packetType != .loopback {
            batch[i].inputIfindex = ifindex
        }
        batch.count += got
        stats.add(queue: queue, .rxPackets, UInt64(got))
        if !rings[queue].isEmpty && bells[queue] >= 0 { CDatapath_eventfd_signal(bells[queue]) }
        return got
    }

    /// Frees what waits on every queue, once the workers have stopped. Returns how many.
    public func release(worker: Worker) -> Int {
        var freed = 0
        var batch = PacketBatch()
        for queue in rings.indices {
            while receive(queue: queue, into: &batch, max: batch.capacity, worker: worker) > 0 {
                freed &+= batch.count
                worker.cache.free(&batch)
            }
        }
        return freed
    }

    public func transmit(queue: Int, _ batch: inout PacketBatch, worker: Worker) {
        var sent = 0
        for i in batch.indices {
            if rings[queue].enqueue(UnsafeMutableRawPointer(batch[i].head)) {
                sent += 1
            } else {
                worker.drop(batch[i], .transmitRingFull)
                stats.add(queue: queue, .txDropped)
            }
        }
        stats.add(queue: queue, .txPackets, UInt64(sent))
        batch.removeAll()
        if sent > 0 && bells[queue] >= 0 { CDatapath_eventfd_signal(bells[queue]) }
    }
}
