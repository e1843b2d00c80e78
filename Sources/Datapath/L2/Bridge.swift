import DatapathCore
import DatapathWire

/// An Ethernet bridge without STP (Linux: `net/bridge`): ports that hand their frames to the
/// bridge through their rx_handler, FDB learning and ageing, flooding of unknown unicast,
/// broadcast and multicast, no hairpin, and the bridge device itself, which can carry an IPv4
/// address: frames to its MAC (and broadcasts) go up its stack, and what its stack sends goes
/// out through the FDB (`br_dev_xmit`).
///
/// Differences from Linux, on purpose: the bridge MAC is fixed at creation (by default derived
/// from the name, locally administered), where Linux follows the lowest port MAC; link-local
/// group frames (01:80:C2:00:00:01–0F: pause, LACP, LLDP…) are not forwarded and, as no
/// handler here takes them on a port, dropped as `.unhandledProtocol`; the STP group address
/// 01:80:C2:00:00:00 is flooded, as Linux does with STP off. Ports are added before workers start.
public final class BridgeDevice: NetDevice, @unchecked Sendable {
    public static let maximumPorts = 64
    public let name: String
    public var ifindex: Int = 0
    public let macAddress: MACAddress
    public let mtu: Int
    public let queueCount: Int
    public let stats: DeviceStats
    public let fdb: BridgeFDB
    public let core: NetCore
    public private(set) var ports: [BridgePort] = []
    /// Per worker, per port: frames to send.
    let outputs: PortBatches
    let workerCount: Int
    let counters: WorkerLocal<CounterBlock>
    public let stage = StageID.named("br-handle-frame")

    public enum Counter: Int, CaseIterable, Sendable {
        /// Known unicast sent to one port.
        case forwarded
        /// Copies sent by flooding (one per port).
        case flooded
        /// Passed up to the bridge device's own stack.
        case local
    }

    public init(name: String, macAddress: MACAddress? = nil, core: NetCore, workers: Int, mtu: Int = 1500,
                fdb: BridgeFDB = BridgeFDB()) {
        self.name = name
        self.macAddress = macAddress ?? BridgeDevice.derivedAddress(name)
        self.mtu = mtu
        self.core = core
        self.fdb = fdb
        self.workerCount = max(1, workers)
        self.queueCount = workerCount
        self.stats = DeviceStats(queues: workerCount)
        self.counters = WorkerLocal(workers: workerCount) { _ in CounterBlock(count: Counter.allCases.count) }
        self.outputs = PortBatches(workers: workerCount, ports: BridgeDevice.maximumPorts)
    }

    /// A stable, locally administered unicast MAC from the device name (FNV-1a).
    static func derivedAddress(_ name: String) -> MACAddress {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return MACAddress(0x02, UInt8(truncatingIfNeeded: hash >> 32), UInt8(truncatingIfNeeded: hash >> 24),
                          UInt8(truncatingIfNeeded: hash >> 16), UInt8(truncatingIfNeeded: hash >> 8),
                          UInt8(truncatingIfNeeded: hash))
    }

    public subscript(counter: Counter) -> UInt64 { counters.reduce(0) { $0 &+ $1[counter.rawValue] } }

    /// Makes `device` a port (Linux: `br_add_if`): installs the port's rx_handler, and local FDB
    /// entries for the bridge's and the port's addresses. Before workers start.
    @discardableResult
    public func addPort(_ device: any NetDevice, now: UInt64 = 0) -> BridgePort {
        precondition(ifindex != 0, "register the bridge before adding ports")
        precondition(ports.count < BridgeDevice.maximumPorts, "a bridge has at most \(BridgeDevice.maximumPorts) ports")
        let port = BridgePort(bridge: self, device: device, index: ports.count)
        ports.append(port)
        outputs.activate(port: port.index)
        core.setRxHandler(port, on: device)
        if fdb.port(of: macAddress) == nil { fdb.addLocal(macAddress, port: port.index, now: now) }
        fdb.addLocal(device.macAddress, port: port.index, now: now)
        return port
    }

    /// The port on `device`, if it is one.
    public func port(of device: any NetDevice) -> BridgePort? { ports.first { $0.device === device } }

    /// The forwarding ports as a bit set (bit i: port i), read once per batch so that the
    /// per-packet checks are one AND.
    func forwardingPorts() -> UInt64 {
        var mask: UInt64 = 0
        for port in ports where port.isForwarding { mask |= 1 << UInt64(port.index) }
        return mask
    }

    public func receive(queue: Int, into batch: inout PacketBatch, max: Int, worker: Worker) -> Int { 0 }

    /// Carrier: some port forwards (Linux: a bridge has carrier while a port is forwarding).
    public var isUp: Bool { ports.contains { $0.isForwarding } }

    /// Frames the bridge's own stack sends (Linux: `br_dev_xmit`): known unicast to its port,
    /// everything else flooded to every forwarding port.
    public func transmit(queue: Int, _ batch: inout PacketBatch, worker: Worker) {
        let outputs = unsafe self.outputs.forWorker(worker)
        let forwarding = forwardingPorts()
        var used: UInt64 = 0
        var bytes = 0
        for i in batch.indices {
            let skb = batch[i]
            bytes &+= skb.length
            let frame = unsafe skb.data
            let destination = unsafe MACAddress.wireWord(at: frame)
            let word = destination & 1 == 0 ? fdb.lookup(destination) : 0
            if word == 0 {
                unsafe used |= flood(skb, except: -1, forwarding: forwarding, outputs: outputs, worker: worker)
                continue
            }
            let out = BridgeFDB.port(word)
            guard word & BridgeFDB.localFlag == 0, forwarding & (1 << UInt64(out)) != 0 else {
                worker.drop(skb, .bridgePortState)
                continue
            }
            unsafe outputs[out].append(skb)
            used |= 1 << UInt64(out)
        }
        stats.add(queue: worker.index, .txPackets, UInt64(batch.count))
        stats.add(queue: worker.index, .txBytes, UInt64(bytes))
        batch.removeAll()
        unsafe send(used, outputs: outputs, worker: worker)
    }

    /// Floods `skb` (`data` at the Ethernet header) to every forwarding port but `except`:
    /// clones for all but the last, which gets the original (Linux: `br_flood`). Returns the
    /// ports that got one, as a bit set; with none, the skb is dropped (`.bridgePortState`).
    @inline(__always)
    func flood(_ skb: SKB, except: Int, forwarding: UInt64, outputs: UnsafeMutablePointer<PacketBatch>,
               worker: Worker) -> UInt64 {
        var last = -1
        var used: UInt64 = 0
        var targets = except >= 0 ? forwarding & ~(1 << UInt64(except)) : forwarding
        while targets != 0 {
            let index = targets.trailingZeroBitCount
            targets &= targets &- 1
            if last >= 0 {
                guard let copy = worker.cache.clone(skb) else {
                    worker.drops.count(.noMemory)
                    continue
                }
                unsafe outputs[last].append(copy)
                used |= 1 << UInt64(last)
            }
            last = index
        }
        guard last >= 0 else {
            worker.drop(skb, .bridgePortState)
            return 0
        }
        unsafe outputs[last].append(skb)
        used |= 1 << UInt64(last)
        counters[worker].add(Counter.flooded.rawValue, UInt64(used.nonzeroBitCount))
        return used
    }

    /// Sends each port's collected frames.
    @inline(__always)
    func send(_ used: UInt64, outputs: UnsafeMutablePointer<PacketBatch>, worker: Worker) {
        var remaining = used
        while remaining != 0 {
            let index = remaining.trailingZeroBitCount
            remaining &= remaining &- 1
            unsafe core.devQueueXmit(&outputs[index], device: ports[index].device, worker: worker)
        }
    }
}
