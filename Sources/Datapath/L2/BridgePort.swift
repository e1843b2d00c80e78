import DatapathCore
import DatapathWire

/// One port of a bridge, and its device's rx_handler (Linux: `struct net_bridge_port` and
/// `br_handle_frame`).
public final class BridgePort: RxHandler, @unchecked Sendable {
    public unowned let bridge: BridgeDevice
    public let device: any NetDevice
    public let index: Int
    @usableFromInline let carrier = SharedFlag(true)

    init(bridge: BridgeDevice, device: any NetDevice, index: Int) {
        self.bridge = bridge
        self.device = device
        self.index = index
    }

    /// Carrier as the link monitor last saw it; a port without carrier does not forward and
    /// loses its learned entries (Linux: `br_port_carrier_check` → `br_stp_disable_port`).
    public var hasCarrier: Bool {
        get { carrier.value }
        set {
            let was = carrier.value
            carrier.value = newValue
            if was && !newValue { bridge.fdb.flush(port: index) }
        }
    }

    /// Whether the port forwards: its device is up and has carrier (Linux: `BR_STATE_FORWARDING`).
    @inlinable public var isForwarding: Bool {
        carrier.value && bridge.core.isAdminUp(ifindex: device.ifindex)
    }

    /// Linux: `br_handle_frame` → `br_handle_frame_finish`, for a batch from this port.
    ///
    /// Reads: the Ethernet addresses. Writes: pushes the Ethernet header back on forwarded
    /// frames; frames for the bridge itself get the bridge's `inputIfindex` (and `.host` when
    /// unicast) and stay in `batch`.
    /// Next: learning; known unicast to its port; broadcast and multicast flooded and passed up;
    /// unknown unicast flooded; frames for the bridge's address passed up.
    /// Drops: `.bridgePortState` (this port or the destination's not forwarding, or no port to
    /// flood to), `.macInvalidSource`, `.bridgeSamePort` (no hairpin), `.unhandledProtocol`
    /// (link-local groups), `.noMemory` (a flood clone).
    public func receive(_ batch: inout PacketBatch, worker: Worker) {
        let start = cycleCount()
        let packets = batch.count
        let bridge = self.bridge
        let forwarding = bridge.forwardingPorts()
        guard forwarding & (1 << UInt64(index)) != 0 else {
            worker.drop(&batch, .bridgePortState)
            return
        }
        let now = worker.clock.now()
        let fdb = bridge.fdb
        let inPort = index
        let bridgeIndex = bridge.ifindex
        let outputs = unsafe bridge.outputs.forWorker(worker)
        var used: UInt64 = 0
        var kept = 0
        var forwarded = 0
        for i in batch.indices {
            let skb = batch[i]
            let frame = unsafe skb.data - EthernetHeader.length
            let destination = unsafe MACAddress.wireWord(at: frame)
            let source = unsafe MACAddress.wireWord(at: frame + 6)
            if source & 1 != 0 || source == 0 {
                worker.drop(skb, .macInvalidSource)
                continue
            }
            fdb.learn(source, port: inPort, now: now)
            if destination & 1 != 0 {
                // 01:80:C2:00:00:0X with X ≠ 0: link-local, never forwarded.
                if destination & 0xF0FF_FFFF_FFFF == 0x0000_00C2_8001 && destination >> 40 != 0 {
                    worker.drop(skb, .unhandledProtocol)
                    continue
                }
                if let copy = worker.cache.clone(skb) {
                    _ = unsafe copy.push(EthernetHeader.length)
                    unsafe used |= bridge.flood(copy, except: inPort, forwarding: forwarding, outputs: outputs, worker: worker)
                } else {
                    worker.drops.count(.noMemory)
                }
                skb.inputIfindex = bridgeIndex
                batch[kept] = skb
                kept &+= 1
                continue
            }
            let word = fdb.lookup(destination)
            if word == 0 {
                _ = unsafe skb.push(EthernetHeader.length)
                unsafe used |= bridge.flood(skb, except: inPort, forwarding: forwarding, outputs: outputs, worker: worker)
                continue
            }
            if word & BridgeFDB.localFlag != 0 {
                skb.packetType = .host
                skb.inputIfindex = bridgeIndex
                batch[kept] = skb
                kept &+= 1
                continue
            }
            let out = BridgeFDB.port(word)
            if out == inPort {
                worker.drop(skb, .bridgeSamePort)
                continue
            }
            guard forwarding & (1 << UInt64(out)) != 0 else {
                worker.drop(skb, .bridgePortState)
                continue
            }
            _ = unsafe skb.push(EthernetHeader.length)
            unsafe outputs[out].append(skb)
            used |= 1 << UInt64(out)
            forwarded &+= 1
        }
        batch.count = kept
        let counters = bridge.counters[worker]
        counters.add(BridgeDevice.Counter.forwarded.rawValue, UInt64(forwarded))
        counters.add(BridgeDevice.Counter.local.rawValue, UInt64(kept))
        if kept > 0 {
            bridge.stats.add(queue: worker.index, .rxPackets, UInt64(kept))
        }
        unsafe bridge.send(used, outputs: outputs, worker: worker)
        worker.stages.record(bridge.stage, packets: packets, cycles: cycleCount() &- start)
    }
}
