import DatapathWire
import Synchronization

/// The devices and receive registries of one datapath instance (Linux: the parts of
/// `struct net` and `net/core/dev.c`'s globals that the receive path reads): the device
/// table, `ptype_base` (protocol handlers by EtherType), `ptype_all` (taps) and each device's
/// rx_handler. Upper layers — IPv4, ARP, bonding, bridging — plug in here at start-up, as
/// Linux's `dev_add_pack` and `netdev_rx_handler_register` do; Core never imports them.
///
/// The registries — devices, packet types, rx_handlers, taps, the ingress fast path — are fixed
/// before workers start: a `WorkerGroup` freezes them when it starts, and changing one after
/// that is a precondition failure (workers read them without synchronisation — nor with the
/// dynamic exclusivity check a class `var` pays on each access: they are
/// `@exclusivity(unchecked)`, since nothing writes them once workers run). What may change
/// while workers run: device flags (admin state, carrier, MTU, through `set…`), and the stack's
/// tables, which are `Snapshot`s.
public final class NetCore: @unchecked Sendable {
    @inlinable public static var maximumDevices: Int { 256 }
    @inlinable public static var maximumPacketTypes: Int { 15 }

    let frozen = Atomic<Bool>(false)

    /// Grace periods for what workers of this core read without locks (neighbour slots, …).
    public let quiescence = Quiescence()

    /// Fixes the registries (Linux has no such moment; here workers read them without locks).
    /// `WorkerGroup.start` calls it.
    package func freezeRegistries() { frozen.store(true, ordering: .releasing) }

    /// Whether workers have started on this core: registries may no longer change.
    package var registriesAreFrozen: Bool { frozen.load(ordering: .acquiring) }

    /// A registry change: allowed only before workers start.
    func checkRegistriesOpen(_ what: @autoclosure () -> String) {
        precondition(!registriesAreFrozen, "\(what()) after workers started: registries are fixed before then")
    }

    /// Devices by `ifindex` (slot 0 unused, as in Linux).
    @exclusivity(unchecked) public private(set) var devices: [(any NetDevice)?] = Array(repeating: nil, count: NetCore.maximumDevices)
    @exclusivity(unchecked) var rxHandlers: [(any RxHandler)?] = Array(repeating: nil, count: NetCore.maximumDevices)
    @exclusivity(unchecked) var deviceTaps: [[any PacketTap]] = Array(repeating: [], count: NetCore.maximumDevices)
    @exclusivity(unchecked) var globalTaps: [any PacketTap] = []
    /// Runs ahead of `eth_type_trans` on devices without rx_handler or taps (`IngressFastPath`).
    @exclusivity(unchecked) var ingressFastPath: (any IngressFastPath)?
    /// Protocol handlers; slot k is `packetTypeIndex` value k + 1.
    @exclusivity(unchecked) var packetTypes: [any PacketTypeHandler] = []
    /// EtherType → handler slot + 1 (0 = none): one load per packet, 64 KiB.
    let packetTypeIndex: UnsafeMutablePointer<UInt8>
    /// Device MACs as UInt64 (low 48 bits, wire order) for the per-packet host check.
    let deviceMACs: UnsafeMutablePointer<UInt64>
    /// Administrative state per ifindex (Linux: `IFF_UP`, set by `dev_open`/`dev_close`):
    /// 1 up, 0 down. Written by the control plane at any time, read by workers once per batch.
    @usableFromInline let adminFlags: UnsafeMutablePointer<UInt32>
    /// Carrier per ifindex (Linux: `netif_carrier_ok`, the link monitor's last reading): 1
    /// carrier, 0 none. Registered devices start with carrier; the stack's link monitor
    /// clears it when the interface under a device loses its link or goes away.
    @usableFromInline let carrierFlags: UnsafeMutablePointer<UInt32>
    /// MTU per ifindex (Linux: `dev->mtu`), the device's own until `setMTU` changes it.
    @usableFromInline let deviceMTUs: UnsafeMutablePointer<UInt32>
    /// Whether each device completes partial checksums (`NetDevice.supportsChecksumOffload`,
    /// read when it registers): 1 or 0, for senders to read per datagram.
    @usableFromInline let checksumOffloads: UnsafeMutablePointer<UInt8>
    /// Each device's queueing disciplines, one per transmit queue (Linux: the root qdisc of
    /// each `netdev_queue`).
    @exclusivity(unchecked) var qdiscs: [[PfifoQdisc]] = Array(repeating: [], count: NetCore.maximumDevices)
    /// Per worker: how many of its qdiscs hold packets (0: `runQdiscs` has nothing to do).
    let backloggedQdiscs: UnsafeMutablePointer<Int>
    /// Packets a transmit queue's qdisc holds at most (Linux: `txqueuelen`, default 1000).
    public var transmitQueueLength = 1000

    public let receiveStage = StageID.named("netif-receive-skb")

    public init() {
        packetTypeIndex = .allocate(capacity: 65536)
        packetTypeIndex.initialize(repeating: 0, count: 65536)
        deviceMACs = .allocate(capacity: NetCore.maximumDevices)
        deviceMACs.initialize(repeating: 0, count: NetCore.maximumDevices)
        adminFlags = .allocate(capacity: NetCore.maximumDevices)
        adminFlags.initialize(repeating: 0, count: NetCore.maximumDevices)
        carrierFlags = .allocate(capacity: NetCore.maximumDevices)
        carrierFlags.initialize(repeating: 0, count: NetCore.maximumDevices)
        deviceMTUs = .allocate(capacity: NetCore.maximumDevices)
        deviceMTUs.initialize(repeating: 0, count: NetCore.maximumDevices)
        checksumOffloads = .allocate(capacity: NetCore.maximumDevices)
        checksumOffloads.initialize(repeating: 0, count: NetCore.maximumDevices)
        backloggedQdiscs = .allocate(capacity: NetCore.maximumWorkers)
        backloggedQdiscs.initialize(repeating: 0, count: NetCore.maximumWorkers)
    }

    deinit {
        packetTypeIndex.deallocate()
        deviceMACs.deallocate()
        adminFlags.deallocate()
        deviceMTUs.deallocate()
        checksumOffloads.deallocate()
        carrierFlags.deallocate()
        backloggedQdiscs.deallocate()
    }

    /// Lets go of every device and handler (their owner — the stack — is going away), which
    /// breaks the reference cycles between the core and what it dispatches to (a handler
    /// holds its core). Only once no worker runs on the core any more.
    public func releaseRegistries() {
        for slot in devices.indices { devices[slot] = nil }
        for slot in rxHandlers.indices { rxHandlers[slot] = nil }
        for slot in deviceTaps.indices { deviceTaps[slot] = [] }
        for slot in qdiscs.indices { qdiscs[slot] = [] }
        globalTaps = []
        ingressFastPath = nil
        packetTypes = []
        packetTypeIndex.update(repeating: 0, count: 65536)
    }

    /// Workers a core serves at most (qdisc bookkeeping is per worker).
    @inlinable public static var maximumWorkers: Int { 256 }

    // MARK: registration (control plane)

    /// Adds a device and gives it the next free ifindex (Linux: `register_netdevice`).
    @discardableResult
    public func register(_ device: any NetDevice) -> Int {
        checkRegistriesOpen("registering device \(device.name)")
        guard let slot = (1..<NetCore.maximumDevices).first(where: { devices[$0] == nil }) else {
            preconditionFailure("more than \(NetCore.maximumDevices - 1) devices")
        }
        device.ifindex = slot
        devices[slot] = device
        deviceMACs[slot] = device.macAddress.wireWord
        SharedWord.store(adminFlags + slot, 1)
        SharedWord.store(carrierFlags + slot, 1)
        SharedWord.store(deviceMTUs + slot, UInt32(clamping: device.mtu))
        checksumOffloads[slot] = device.supportsChecksumOffload ? 1 : 0
        qdiscs[slot] = (0..<max(1, device.queueCount)).map { _ in PfifoQdisc(limit: transmitQueueLength) }
        return slot
    }

    /// Sets a device administratively up or down (Linux: `dev_open` / `dev_close`); may be
    /// called while workers run. Frames received on a down device are dropped (`.deviceDown`).
    public func setAdminUp(_ up: Bool, ifindex: Int) {
        precondition(ifindex > 0 && ifindex < NetCore.maximumDevices, "no device \(ifindex)")
        SharedWord.store(adminFlags + ifindex, up ? 1 : 0)
    }

    /// Whether the device is administratively up (registered devices start up).
    @inlinable
    public func isAdminUp(ifindex: Int) -> Bool {
        ifindex > 0 && ifindex < NetCore.maximumDevices && SharedWord.load(adminFlags + ifindex) != 0
    }

    /// Records whether the device has carrier (Linux: `netif_carrier_on` / `netif_carrier_off`);
    /// may be called while workers run. Without carrier `devQueueXmit` drops what is sent to
    /// the device (`.deviceDown`) and its qdiscs are emptied, as Linux's `dev_deactivate`
    /// swaps in the noop qdisc: nothing stale waits for the link to come back.
    public func setCarrier(_ carrier: Bool, ifindex: Int) {
        precondition(ifindex > 0 && ifindex < NetCore.maximumDevices, "no device \(ifindex)")
        SharedWord.store(carrierFlags + ifindex, carrier ? 1 : 0)
    }

    /// Whether the device has carrier (registered devices start with it).
    @inlinable
    public func hasCarrier(ifindex: Int) -> Bool {
        ifindex > 0 && ifindex < NetCore.maximumDevices && SharedWord.load(carrierFlags + ifindex) != 0
    }

    /// Whether the device completes a checksum left partial (Linux: `dev->features &
    /// NETIF_F_HW_CSUM`), as it said when it registered; false for no device.
    @inlinable
    public func offloadsChecksum(ifindex: Int) -> Bool { checksumOffloadFlags.contains(ifindex: ifindex) }

    /// The same flags as a value a sender keeps (it lives as long as this core): asked per
    /// datagram, with no reference counting on the way.
    public var checksumOffloadFlags: ChecksumOffloadFlags { ChecksumOffloadFlags(flags: checksumOffloads) }

    /// The device's MTU (Linux: `dev->mtu`): layer-3 bytes a frame may carry.
    @inlinable
    public func mtu(ifindex: Int) -> Int {
        guard ifindex > 0 && ifindex < NetCore.maximumDevices else { return 0 }
        return Int(SharedWord.load(deviceMTUs + ifindex))
    }

    /// Sets a device's MTU (Linux: `ip link set DEV mtu N` → `dev_set_mtu`). It may not exceed
    /// what the device can carry (`device.mtu`, its MTU when registered). Workers see the new
    /// value on their next route lookup; the caller invalidates route caches.
    public func setMTU(_ mtu: Int, ifindex: Int) {
        precondition(ifindex > 0 && ifindex < NetCore.maximumDevices, "no device \(ifindex)")
        SharedWord.store(deviceMTUs + ifindex, UInt32(clamping: mtu))
    }

    /// Re-reads `device.macAddress` for the receive path's host check, after a device's address
    /// changed (Linux: `dev_set_mac_address`; a bond takes its first slave's address).
    public func addressChanged(_ device: any NetDevice) {
        deviceMACs[device.ifindex] = device.macAddress.wireWord
    }

    public func device(named name: String) -> (any NetDevice)? {
        devices.first { $0?.name == name } ?? nil
    }

    /// Registers `handler` for `etherType` (Linux: `dev_add_pack`).
    public func addPacketType(_ etherType: EtherType, _ handler: any PacketTypeHandler) {
        checkRegistriesOpen("adding a packet type")
        if let existing = packetTypes.firstIndex(where: { $0 === handler }) {
            packetTypeIndex[Int(etherType.rawValue)] = UInt8(existing + 1)
            return
        }
        precondition(packetTypes.count < NetCore.maximumPacketTypes, "too many packet types")
        packetTypes.append(handler)
        packetTypeIndex[Int(etherType.rawValue)] = UInt8(packetTypes.count)
    }

    /// Installs `device`'s rx_handler (Linux: `netdev_rx_handler_register`); one per device.
    public func setRxHandler(_ handler: (any RxHandler)?, on device: any NetDevice) {
        checkRegistriesOpen("setting the rx_handler of \(device.name)")
        rxHandlers[device.ifindex] = handler
    }

    public func rxHandler(of device: any NetDevice) -> (any RxHandler)? { rxHandlers[device.ifindex] }

    /// Adds a tap for one device, or for every device when `device` is nil.
    public func addTap(_ tap: any PacketTap, device: (any NetDevice)? = nil) {
        checkRegistriesOpen("adding a tap")
        if let device { deviceTaps[device.ifindex].append(tap) } else { globalTaps.append(tap) }
    }
}

/// Which devices complete partial checksums (`NetCore.checksumOffloadFlags`), by ifindex.
public struct ChecksumOffloadFlags: @unchecked Sendable {
    @usableFromInline let flags: UnsafeMutablePointer<UInt8>

    init(flags: UnsafeMutablePointer<UInt8>) { self.flags = flags }

    /// Whether device `ifindex` offloads checksums; false for no device.
    @inlinable
    public func contains(ifindex: Int) -> Bool {
        ifindex > 0 && ifindex < NetCore.maximumDevices && flags[ifindex] != 0
    }
}
