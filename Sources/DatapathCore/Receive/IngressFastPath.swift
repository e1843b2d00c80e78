import DatapathWire

/// A protocol's fast path over frames still at their Ethernet header, run before
/// `eth_type_trans` (Linux: the receive hook of XDP — `bpf_prog_run_xdp` in the driver, or
/// `do_xdp_generic` — running a forwarding program like the kernel's `xdp_fwd` sample: FIB
/// lookup, TTL and MTU checks, MAC rewrite, redirect). It finishes what it can on its own and
/// passes the rest on (`XDP_PASS`) to the ordinary path, untouched.
///
/// `NetCore` runs it only for a device with no rx_handler and no taps, so nothing that would
/// see a frame first is skipped.
public protocol IngressFastPath: AnyObject, Sendable {
    /// Takes from `batch` the frames it finishes (sent on, or queued for sending) and leaves the
    /// others in `batch`, unchanged and in their order. All frames arrived on `ifindex`, whose
    /// MAC address is `macWord` (as `MACAddress.wireWord`).
    func receive(_ batch: inout PacketBatch, ifindex: Int, macWord: UInt64, worker: Worker)
}

extension NetCore {
    /// Installs the ingress fast path (one per core; nil removes it). Control plane, before
    /// workers start.
    public func setIngressFastPath(_ fastPath: (any IngressFastPath)?) {
        checkRegistriesOpen("setting the ingress fast path")
        ingressFastPath = fastPath
    }

    /// Runs the fast path over a batch from one device, when there is one and nothing else
    /// (rx_handler, taps) must see the frames first.
    @inline(__always)
    func runIngressFastPath(_ batch: inout PacketBatch, ifindex: Int, worker: Worker) {
        guard let fastPath = ingressFastPath, rxHandlers[ifindex] == nil, globalTaps.isEmpty,
              deviceTaps[ifindex].isEmpty else { return }
        fastPath.receive(&batch, ifindex: ifindex, macWord: deviceMACs[ifindex], worker: worker)
    }

    /// Runs the fast path over frames an rx_handler handed to the device above it (a bond's
    /// slaves to the bond, a bridge's ports to the bridge for local delivery), when that device
    /// has no rx_handler of its own: taps have seen them at both levels already. The frames
    /// are past `eth_type_trans`; the fast path gets them at their Ethernet header again, and
    /// what it passes on goes back to the network header, untouched. A batch with a frame
    /// whose Ethernet header is not just before its network header is left alone.
    func runIngressFastPath(upper batch: inout PacketBatch, ifindex: Int, worker: Worker) {
        guard let fastPath = ingressFastPath else { return }
        let slots = batch.slots
        let count = batch.count
        var pushed = 0
        while pushed < count {
            let head = slots[pushed].head
            let data = head.pointee.data
            let networkOffset = Int(head.pointee.macOffset) &+ EthernetHeader.length
            guard head.pointee.bufferStart + networkOffset == data else {
                Self.pullEthernetHeaders(slots, pushed)
                return
            }
            head.pointee.data = data - EthernetHeader.length
            head.pointee.length &+= UInt32(EthernetHeader.length)
            pushed &+= 1
        }
        fastPath.receive(&batch, ifindex: ifindex, macWord: deviceMACs[ifindex], worker: worker)
        Self.pullEthernetHeaders(batch.slots, batch.count)
    }

    @inline(__always)
    static func pullEthernetHeaders(_ slots: UnsafeMutablePointer<SKB>, _ count: Int) {
        for i in 0..<count {
            let head = slots[i].head
            head.pointee.data += EthernetHeader.length
            head.pointee.length &-= UInt32(EthernetHeader.length)
        }
    }
}
