import DatapathCore
import DatapathWire

/// A bonding mode (Linux: the `mode` of the bonding driver).
public enum BondMode: String, Sendable, CaseIterable {
    /// One slave carries everything; another takes over when it loses link (mode 1).
    case activeBackup = "active-backup"
    /// Frames go round-robin over the slaves with link (mode 0).
    case balanceRR = "balance-rr"
    /// A hash of each frame picks the slave (mode 2, `xmit_hash_policy`).
    case balanceXOR = "balance-xor"
}

/// A bond device (Linux: `drivers/net/bonding`): slaves hand their frames to it through their
/// rx_handler (`bond_handle_frame`), and it sends through them by mode (`bond_start_xmit`).
/// Link monitoring (`miimon`, 100 ms) polls each slave's kernel link state (`NetDevice.isUp`:
/// SIOCGIFFLAGS IFF_UP and IFF_RUNNING for AF_PACKET slaves) plus its administrative state, and
/// fails over in active-backup mode, announcing the bond's addresses with gratuitous ARP.
///
/// Differences from Linux, on purpose: slaves keep their own MACs (the kernel interfaces are
/// not ours to change; promiscuous rings receive the bond's address anyway) and the bond takes
/// its first slave's MAC, as Linux does. Slaves are added before workers start.
@safe public final class BondDevice: NetDevice, @unchecked Sendable {
    public static let maximumSlaves = 16
    public let name: String
    public var ifindex: Int = 0
    public private(set) var macAddress: MACAddress
    public let mtu: Int
    public let queueCount: Int
    public let stats: DeviceStats
    public let mode: BondMode
    public let hashPolicy: XmitHashPolicy
    public let core: NetCore
    /// Addresses announced after a failover; nil announces nothing.
    public let addresses: InterfaceAddresses?
    public private(set) var slaves: [BondSlave] = []
    /// Active slave index + 1 (0: none), for active-backup.
    let activeWord = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    /// Per worker: the round-robin counter, then per slave its rx and tx packet counts.
    let counters: WorkerLocal<CounterBlock>
    let outputs: PortBatches
    let workerCount: Int
    let failoverCount = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    public let stage = StageID.named("bond-xmit")

    public init(name: String, mode: BondMode, hashPolicy: XmitHashPolicy = .layer2, core: NetCore, workers: Int,
                addresses: InterfaceAddresses? = nil, macAddress: MACAddress = .zero, mtu: Int = 1500) {
        self.name = name
        self.mode = mode
        self.hashPolicy = hashPolicy
        self.core = core
        self.addresses = addresses
        self.macAddress = macAddress
        self.mtu = mtu
        self.workerCount = max(1, workers)
        self.queueCount = workerCount
        self.stats = DeviceStats(queues: workerCount)
        self.counters = WorkerLocal(workers: workerCount) { _ in CounterBlock(count: 1 + 2 * BondDevice.maximumSlaves) }
        unsafe activeWord.initialize(to: 0)
        unsafe failoverCount.initialize(to: 0)
        outputs = PortBatches(workers: workerCount, ports: BondDevice.maximumSlaves)
    }

    deinit {
        unsafe activeWord.deallocate()
        unsafe failoverCount.deallocate()
    }

    /// Enslaves `device` (Linux: `bond_enslave`): installs its rx_handler; the first slave gives
    /// the bond its MAC and, in active-backup, becomes active if it has link.
    @discardableResult
    public func addSlave(_ device: any NetDevice) -> BondSlave {
        precondition(ifindex != 0, "register the bond before adding slaves")
        precondition(slaves.count < BondDevice.maximumSlaves, "a bond has at most \(BondDevice.maximumSlaves) slaves")
        let slave = BondSlave(bond: self, device: device, index: slaves.count)
        slaves.append(slave)
        outputs.activate(port: slave.index)
        if macAddress.isZero {
            macAddress = device.macAddress
            core.addressChanged(self)
        }
        core.setRxHandler(slave, on: device)
        slave.hasLink = device.isUp && core.isAdminUp(ifindex: device.ifindex)
        if mode == .activeBackup && activeSlave == nil && slave.hasLink {
            unsafe SharedWord.store(activeWord, UInt32(slave.index + 1))
        }
        return slave
    }

    /// The slave carrying traffic in active-backup mode.
    public var activeSlave: BondSlave? {
        let word = unsafe Int(SharedWord.load(activeWord))
        return word == 0 ? nil : slaves[word - 1]
    }

    /// Failovers so far: changes from one active slave to another (Linux: the active slave
    /// changes in /proc/net/bonding); a first activation is not one.
    public var failovers: UInt64 { unsafe SharedWord.load(failoverCount) }

    public func slaveCounters(_ slave: BondSlave) -> (rxPackets: UInt64, txPackets: UInt64) {
        counters.reduce((0, 0)) { ($0.0 &+ $1[1 + 2 * slave.index], $0.1 &+ $1[2 + 2 * slave.index]) }
    }

    public func receive(queue: Int, into batch: inout PacketBatch, max: Int, worker: Worker) -> Int { 0 }

    /// Carrier: some slave has link (Linux: `bond_set_carrier`).
    public var isUp: Bool { slaves.contains { $0.hasLink } }

    /// Link monitoring (Linux: `bond_mii_monitor`): re-reads each slave's link, and in
    /// active-backup mode moves traffic off a slave that lost it — to the first slave with link
    /// — then announces the bond's addresses through the new slave (`NETDEV_NOTIFY_PEERS`).
    /// Returns whether the active slave changed. Runs on one worker.
    @discardableResult
    public func monitor(worker: Worker) -> Bool {
        for slave in slaves {
            slave.hasLink = slave.device.isUp && core.isAdminUp(ifindex: slave.device.ifindex)
        }
        guard mode == .activeBackup else { return false }
        if let active = activeSlave, active.hasLink { return false }
        let next = slaves.first { $0.hasLink }
        let previous = activeSlave
        unsafe SharedWord.store(activeWord, next.map { UInt32($0.index + 1) } ?? 0)
        guard let next, next !== previous else { return false }
        if previous != nil { unsafe SharedWord.store(failoverCount, SharedWord.load(failoverCount) &+ 1) }
        announce(through: next, worker: worker)
        return true
    }

    /// Sends one gratuitous ARP per address of the bond.
    func announce(through slave: BondSlave, worker: Worker) {
        guard let addresses else { return }
        for address in addresses.addresses(ifindex: ifindex, worker: worker) {
            if let frame = ARP.gratuitous(address.address, device: self, worker: worker) {
                core.devQueueXmit(frame, device: slave.device, worker: worker)
            }
        }
    }

    /// Linux: `bond_start_xmit` — by mode: all to the active slave; round-robin over slaves
    /// with link; or by `hashPolicy` modulo the slaves with link.
    /// Drops: `.bondNoSlave` when no slave has link.
    public func transmit(queue: Int, _ batch: inout PacketBatch, worker: Worker) {
        let start = cycleCount()
        let packets = batch.count
        let counters = self.counters[worker]
        let w = worker.index  // in range: checked by `counters`
        var bytes = 0
        for i in batch.indices { bytes &+= batch[i].length }
        stats.add(queue: w, .txPackets, UInt64(packets))
        stats.add(queue: w, .txBytes, UInt64(bytes))
        if mode == .activeBackup {
            guard let active = activeSlave else {
                worker.drop(&batch, .bondNoSlave)
                return
            }
            counters.add(2 + 2 * active.index, UInt64(packets))
            core.devQueueXmit(&batch, device: active.device, worker: worker)
            worker.stages.record(stage, packets: packets, cycles: cycleCount() &- start)
            return
        }
        // The slaves with link, in order (Linux: `usable_slaves`).
        var usable = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        unsafe withUnsafeMutableBytes(of: &usable) { raw in
            let list = unsafe raw.baseAddress!.assumingMemoryBound(to: Int.self)
            for slave in slaves where slave.hasLink {
                unsafe list[count] = slave.index
                count += 1
            }
            guard count > 0 else {
                worker.drop(&batch, .bondNoSlave)
                return
            }
            let outputs = unsafe self.outputs.forWorker(worker)
            var used: UInt32 = 0
            if mode == .balanceRR {
                var next = Int(truncatingIfNeeded: counters[0])
                for i in batch.indices {
                    let slave = unsafe list[next % count]
                    next &+= 1
                    unsafe outputs[slave].append(batch[i])
                    used |= 1 << UInt32(slave)
                }
                counters.add(0, UInt64(batch.count))
            } else {
                let layer34 = hashPolicy == .layer34
                for i in batch.indices {
                    let skb = batch[i]
                    let hash = unsafe layer34 ? BondHash.layer34(skb.data, length: skb.length) : BondHash.layer2(skb.data)
                    let slave = unsafe list[Int(hash % UInt32(count))]
                    unsafe outputs[slave].append(skb)
                    used |= 1 << UInt32(slave)
                }
            }
            batch.removeAll()
            while used != 0 {
                let slave = Int(used.trailingZeroBitCount)
                used &= used &- 1
                unsafe counters.add(2 + 2 * slave, UInt64(outputs[slave].count))
                unsafe core.devQueueXmit(&outputs[slave], device: slaves[slave].device, worker: worker)
            }
        }
        worker.stages.record(stage, packets: packets, cycles: cycleCount() &- start)
    }
}

/// One slave of a bond, and its device's rx_handler (Linux: `struct slave` and
/// `bond_handle_frame`).
public final class BondSlave: RxHandler, @unchecked Sendable {
    public unowned let bond: BondDevice
    public let device: any NetDevice
    public let index: Int
    let link = SharedFlag(false)

    init(bond: BondDevice, device: any NetDevice, index: Int) {
        self.bond = bond
        self.device = device
        self.index = index
    }

    /// Link as the monitor last saw it.
    public internal(set) var hasLink: Bool {
        get { link.value }
        set { link.value = newValue }
    }

    /// Whether frames received on this slave go up as the bond's: always in the balance modes,
    /// only on the active slave in active-backup.
    public var isActive: Bool { bond.mode != .activeBackup || bond.activeSlave === self }

    /// Linux: `bond_handle_frame` — hands frames to the bond (`RX_HANDLER_ANOTHER`), marking
    /// unicast to the bond's MAC as `.host`; an inactive slave's frames are dropped
    /// (`.bondInactiveSlave`, Linux's `RX_HANDLER_EXACT` with no exact-match taker).
    public func receive(_ batch: inout PacketBatch, worker: Worker) {
        guard isActive else {
            worker.drop(&batch, .bondInactiveSlave)
            return
        }
        let bondIndex = bond.ifindex
        let bondMAC = bond.macAddress.wireWord
        for i in batch.indices {
            let skb = batch[i]
            let frame = unsafe skb.data - EthernetHeader.length
            let destination = unsafe MACAddress.wireWord(at: frame)
            if destination == bondMAC { skb.packetType = .host }
            skb.inputIfindex = bondIndex
        }
        bond.counters[worker].add(1 + 2 * index, UInt64(batch.count))
        let w = worker.index  // in range: checked by `counters`
        bond.stats.add(queue: w, .rxPackets, UInt64(batch.count))
    }
}
