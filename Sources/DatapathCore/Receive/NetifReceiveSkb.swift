import DatapathWire

extension NetCore {
    /// Delivers a batch received on one device up the stack (Linux: `netif_receive_skb` →
    /// `__netif_receive_skb_core`, after the driver's `eth_type_trans`).
    ///
    /// Reads: the Ethernet header, `inputIfindex` (the same for the whole batch).
    /// Writes: `protocolType`, `packetType`, MAC and network offsets; pulls the Ethernet header.
    /// Next: the ingress fast path (`IngressFastPath`, on a device without rx_handler or taps);
    /// for what it passes on, taps (`ptype_all`) → the device's rx_handler (again for the device
    /// it hands frames to, up to 8 deep) → the `PacketTypeHandler` for each EtherType.
    /// Drops: `.deviceDown` (administratively down), `.packetTooSmall`, `.unhandledProtocol`.
    ///
    /// Handlers must not call this re-entrantly; re-injected packets go through a backlog.
    public func netifReceiveSkb(_ batch: inout PacketBatch, worker: Worker) {
        guard !batch.isEmpty else { return }
        let first = batch[0].head.pointee.inputIfindex
        var uniform = true
        for i in 1..<batch.count where batch[i].head.pointee.inputIfindex != first {
            uniform = false
            break
        }
        if uniform {
            receiveFromOneDevice(&batch, worker: worker)
            return
        }
        // A backlog batch can mix devices: deliver one device's run at a time.
        while !batch.isEmpty {
            let ifindex = batch[0].head.pointee.inputIfindex
            var part = worker.deviceSplitBatch.pointee.view()
            var rest = 0
            for i in batch.indices {
                if batch[i].head.pointee.inputIfindex == ifindex {
                    part.append(batch[i])
                } else {
                    batch[rest] = batch[i]
                    rest &+= 1
                }
            }
            batch.count = rest
            receiveFromOneDevice(&part, worker: worker)
            worker.deviceSplitBatch.pointee.removeAll()
        }
    }

    func receiveFromOneDevice(_ batch: inout PacketBatch, worker: Worker) {
        let start = cycleCount()
        let packets = batch.count
        var ifindex = batch[0].inputIfindex
        guard isAdminUp(ifindex: ifindex) else {
            worker.drop(&batch, .deviceDown)
            worker.stages.record(receiveStage, packets: packets, cycles: cycleCount() &- start)
            return
        }
        runIngressFastPath(&batch, ifindex: ifindex, worker: worker)
        if batch.isEmpty {
            worker.stages.record(receiveStage, packets: packets, cycles: cycleCount() &- start)
            return
        }
        var oneProtocol = ethTypeTrans(&batch, ifindex: ifindex, worker: worker)
        deliverTaps(batch, ifindex: ifindex, worker: worker)
        var depth = 0
        while !batch.isEmpty, let handler = rxHandlers[ifindex], depth < 8 {
            oneProtocol = false  // a handler may hand on frames of other protocols
            handler.receive(&batch, worker: worker)
            guard !batch.isEmpty, batch[0].inputIfindex != ifindex else { break }
            ifindex = batch[0].inputIfindex
            deliverTaps(batch, ifindex: ifindex, worker: worker)
            depth += 1
        }
        if depth > 0, !batch.isEmpty, rxHandlers[ifindex] == nil {
            runIngressFastPath(upper: &batch, ifindex: ifindex, worker: worker)
            if batch.isEmpty {
                worker.stages.record(receiveStage, packets: packets, cycles: cycleCount() &- start)
                return
            }
        }
        if !batch.isEmpty { deliverByType(&batch, oneProtocol: oneProtocol, worker: worker) }
        worker.stages.record(receiveStage, packets: packets, cycles: cycleCount() &- start)
    }

    /// Sets protocol and packet type and pulls the Ethernet header (Linux: `eth_type_trans`).
    /// Returns whether every frame kept carries the same EtherType.
    @inline(__always)
    func ethTypeTrans(_ batch: inout PacketBatch, ifindex: Int, worker: Worker) -> Bool {
        let ownMAC = deviceMACs[ifindex]
        var kept = 0
        // The first frame's EtherType (a value no EtherType has when it is too short: then the
        // answer is just "not known to be one").
        let first = batch[0].length >= EthernetHeader.length
            ? UInt64(UInt16(bigEndian: batch[0].data.loadUnaligned(fromByteOffset: 12, as: UInt16.self))) : 1 << 32
        var differing: UInt64 = 0
        for i in batch.indices {
            let skb = batch[i]
            guard skb.length >= EthernetHeader.length else {
                worker.drop(skb, .packetTooSmall)
                continue
            }
            let frame = skb.data
            let destination = MACAddress.wireWord(at: frame)
            let head = skb.head
            // Unicast to us first: nearly every frame.
            if destination == ownMAC {
                head.pointee.packetType = .host
            } else if destination & 1 == 0 {
                head.pointee.packetType = .otherHost
            } else {
                head.pointee.packetType = destination == 0xFFFF_FFFF_FFFF ? .broadcast : .multicast
            }
            // MAC, network and transport offsets and the protocol in one store (the transport
            // header starts where the network header does, as `__netif_receive_skb_core` resets
            // it).
            let protocolType = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
            differing |= UInt64(protocolType) ^ first
            skb.pullEthernetHeader(protocolType: protocolType, transportAfter: 0)
            batch[kept] = skb
            kept &+= 1
        }
        batch.count = kept
        return differing == 0
    }

    @inline(__always)
    func deliverTaps(_ batch: borrowing PacketBatch, ifindex: Int, worker: Worker) {
        if globalTaps.isEmpty && deviceTaps[ifindex].isEmpty { return }
        guard let device = devices[ifindex] else { return }
        for tap in globalTaps { tap.tap(batch, device: device, worker: worker) }
        for tap in deviceTaps[ifindex] { tap.tap(batch, device: device, worker: worker) }
    }

    /// Splits by EtherType and hands each part to its handler (Linux: `deliver_ptype_list_skb`).
    /// `oneProtocol`: the caller knows every frame carries the same EtherType.
    @inline(__always)
    func deliverByType(_ batch: inout PacketBatch, oneProtocol: Bool, worker: Worker) {
        let index = packetTypeIndex
        // Common case: one protocol in the whole batch, handed on without splitting.
        let first = index[Int(batch[0].head.pointee.protocolType)]
        var uniform = first != 0
        if uniform && !oneProtocol {
            for i in 1..<batch.count where index[Int(batch[i].head.pointee.protocolType)] != first {
                uniform = false
                break
            }
        }
        if uniform {
            packetTypes[Int(first) &- 1].receive(&batch, worker: worker)
            return
        }
        var used: UInt32 = 0
        for i in batch.indices {
            let skb = batch[i]
            let slot = Int(index[Int(skb.head.pointee.protocolType)])
            if slot == 0 {
                worker.drop(skb, .unhandledProtocol)
                continue
            }
            used |= 1 << UInt32(slot)
            worker.dispatchBatch(slot).pointee.append(skb)
        }
        batch.removeAll()
        while used != 0 {
            let slot = used.trailingZeroBitCount
            used &= used &- 1
            // The handler gets the slot's skbs in a view; the slot's batch itself is emptied.
            let gathered = worker.dispatchBatch(slot)
            var part = gathered.pointee.view(count: gathered.pointee.count)
            gathered.pointee.removeAll()
            packetTypes[slot &- 1].receive(&part, worker: worker)
            if !part.isEmpty { worker.drop(&part, .notSpecified) }
        }
    }
}

extension SKB {
    /// What `eth_type_trans` leaves in an skb whose `data` is at its Ethernet header: the MAC
    /// header there, the network header after it, the transport header `transportAfter` bytes
    /// further (0 until the network layer sets it; a fast path that validated a 20-byte IPv4
    /// header gives 20), the protocol — written as one store (the four fields are adjacent;
    /// layout checked in `PacketPool.init`) — and `data` moved past the 14 bytes. The packet
    /// type is the caller's.
    @inlinable @inline(__always)
    public func pullEthernetHeader(protocolType: UInt16, transportAfter: Int) {
        let head = self.head
        let frame = head.pointee.data
        let macOffset = UInt64(UInt(bitPattern: frame - head.pointee.bufferStart) & 0xFFFF)
        // mac | (mac + 14) << 16 | (mac + 14 + transport) << 32 | protocol << 48 (no carries:
        // the offsets stay below 65 536 in a buffer).
        let offsets = macOffset &* 0x0000_0001_0001_0001 &+ 0x0000_000E_000E_0000
            &+ UInt64(truncatingIfNeeded: transportAfter) << 32
        UnsafeMutableRawPointer(head).storeBytes(of: offsets | UInt64(protocolType) << 48, toByteOffset: 0x20,
                                                 as: UInt64.self)
        head.pointee.data = frame + 14
        head.pointee.length &-= 14
    }
}
