extension NetCore {
    /// Sends a batch of complete frames (`data` at the Ethernet header) out of `device`
    /// (Linux: `dev_queue_xmit` → `dev_hard_start_xmit`, which shows each frame to the taps
    /// with `dev_queue_xmit_nit` before `ndo_start_xmit`).
    ///
    /// Reads: nothing per packet. Writes: the MAC header offset and `packetType = .outgoing`,
    /// only when the device has taps. Next: the device on the worker's own queue (queue =
    /// worker index modulo the device's queues) through its qdisc: with nothing waiting, the
    /// batch goes straight to `device.transmitSome`, and what the device has no room for
    /// waits in the qdisc (`__dev_xmit_skb` → `qdisc_run`); with packets waiting, the batch
    /// queues behind them and the qdisc runs. Drops: `.deviceDown` when the device is
    /// administratively down or has no carrier, `.qdiscDrop` past the qdisc's limit, and whatever the device's
    /// transmit counts. Empties `batch` either way. A GSO packet for a device that does not
    /// segment is segmented in software first (`validate_xmit_skb`).
    public func devQueueXmit(_ batch: inout PacketBatch, device: any NetDevice, worker: Worker) {
        guard !batch.isEmpty else { return }
        let ifindex = device.ifindex
        guard isAdminUp(ifindex: ifindex) && hasCarrier(ifindex: ifindex) else {
            device.stats.add(queue: device.transmitQueue(for: worker), .txDropped, UInt64(batch.count))
            worker.drop(&batch, .deviceDown)
            return
        }
        if !device.supportsGSO {
            for i in batch.indices where batch[i].isGSO {
                transmitSegmented(&batch, device: device, worker: worker)
                return
            }
        }
        if !globalTaps.isEmpty || !deviceTaps[ifindex].isEmpty {
            for i in batch.indices {
                batch[i].resetMACHeader()
                batch[i].packetType = .outgoing
            }
            deliverTaps(batch, ifindex: ifindex, worker: worker)
        }
        let queue = device.transmitQueue(for: worker)
        let qdisc = qdiscs[ifindex][queue]
        if qdisc.backlog == 0 {
            device.transmitSome(queue: queue, &batch, worker: worker)
            if batch.isEmpty { return }
        }
        let wasIdle = qdisc.backlog == 0
        let dropped = qdisc.enqueue(&batch, worker: worker)
        if dropped > 0 { device.stats.add(queue: queue, .txDropped, UInt64(dropped)) }
        if wasIdle && qdisc.backlog > 0 { backloggedQdiscs[worker.index] &+= 1 }
        if !wasIdle { run(qdisc, device: device, queue: queue, worker: worker) }
    }

    /// `devQueueXmit` for a batch holding GSO packets and a device that does not segment
    /// (Linux: `validate_xmit_skb` → `skb_gso_segment`): each GSO packet becomes its segments
    /// (`skbGSOSegment`, the IPv4 header where the network header is), in order with the rest,
    /// sent in batches. Drops: `.gsoSegmentation` for a packet that cannot be segmented.
    @inline(never)
    func transmitSegmented(_ batch: inout PacketBatch, device: any NetDevice, worker: Worker) {
        var out = worker.gsoBatch.pointee.view()
        out.removeAll()
        for i in batch.indices {
            let skb = batch[i]
            if skb.isGSO {
                // Room for as many segments as a batch holds.
                if !out.isEmpty {
                    devQueueXmit(&out, device: device, worker: worker)
                    out.removeAll()
                }
                if !skbGSOSegment(skb, networkOffset: skb.networkHeader - skb.data, into: &out, worker: worker) {
                    worker.drop(skb, .gsoSegmentation)
                }
                continue
            }
            if out.isFull {
                devQueueXmit(&out, device: device, worker: worker)
                out.removeAll()
            }
            out.append(skb)
        }
        batch.removeAll()
        devQueueXmit(&out, device: device, worker: worker)
        worker.gsoBatch.pointee.removeAll()
    }

    /// Sends what a qdisc holds while the device takes it (Linux: `qdisc_restart`), in
    /// batches through the worker's qdisc scratch batch.
    func run(_ qdisc: PfifoQdisc, device: any NetDevice, queue: Int, worker: Worker) {
        var batch = worker.qdiscBatch.pointee.view()
        while qdisc.backlog > 0 {
            qdisc.dequeue(into: &batch)
            device.transmitSome(queue: queue, &batch, worker: worker)
            if !batch.isEmpty {
                qdisc.requeue(&batch)
                break
            }
        }
        worker.qdiscBatch.pointee.removeAll()
        if qdisc.backlog == 0 { backloggedQdiscs[worker.index] &-= 1 }
    }

    /// Runs every qdisc of this worker that holds packets (Linux: `net_tx_action`); the worker
    /// loop calls it each round, and it costs one load when nothing waits.
    @inline(__always)
    public func runQdiscs(worker: Worker) {
        guard backloggedQdiscs[worker.index] > 0 else { return }
        for ifindex in 1..<NetCore.maximumDevices {
            guard let device = devices[ifindex], !qdiscs[ifindex].isEmpty else { continue }
            let queue = device.transmitQueue(for: worker)
            let qdisc = qdiscs[ifindex][queue]
            guard qdisc.backlog > 0 else { continue }
            if hasCarrier(ifindex: ifindex) {
                run(qdisc, device: device, queue: queue, worker: worker)
            } else {
                purge(qdisc, device: device, queue: queue, worker: worker)
            }
        }
    }

    /// Drops everything a qdisc holds (Linux: `qdisc_reset` from `dev_deactivate` when the
    /// carrier goes): `.deviceDown`, counted in the device's tx_dropped.
    func purge(_ qdisc: PfifoQdisc, device: any NetDevice, queue: Int, worker: Worker) {
        var batch = worker.qdiscBatch.pointee.view()
        while qdisc.backlog > 0 {
            qdisc.dequeue(into: &batch)
            device.stats.add(queue: queue, .txDropped, UInt64(batch.count))
            worker.drop(&batch, .deviceDown)
        }
        worker.qdiscBatch.pointee.removeAll()
        backloggedQdiscs[worker.index] &-= 1
    }

    /// Frees every packet the devices' qdiscs hold, once the workers have stopped (Linux:
    /// `qdisc_reset` as the devices go down at exit). Returns how many it freed.
    package func releaseQdiscs(worker: Worker) -> Int {
        var freed = 0
        var batch = worker.qdiscBatch.pointee.view()
        for ifindex in 1..<NetCore.maximumDevices {
            for qdisc in qdiscs[ifindex] {
                while qdisc.backlog > 0 {
                    qdisc.dequeue(into: &batch)
                    freed &+= batch.count
                    worker.cache.free(&batch)
                }
            }
        }
        worker.qdiscBatch.pointee.removeAll()
        backloggedQdiscs.update(repeating: 0, count: NetCore.maximumWorkers)
        return freed
    }

    /// Whether this worker's qdiscs hold packets (an idle worker then sleeps only briefly).
    public func hasQdiscBacklog(worker: Worker) -> Bool {
        backloggedQdiscs[worker.index] > 0
    }

    /// The qdisc of a device's transmit queue (statistics, tests).
    package func qdisc(ifindex: Int, queue: Int = 0) -> PfifoQdisc? {
        guard ifindex > 0, ifindex < NetCore.maximumDevices, queue < qdiscs[ifindex].count else { return nil }
        return qdiscs[ifindex][queue]
    }

    /// Sends one frame (`data` at the Ethernet header): `devQueueXmit` for control traffic
    /// such as ARP replies and probes, through the worker's transmit scratch batch.
    public func devQueueXmit(_ skb: SKB, device: any NetDevice, worker: Worker) {
        var one = worker.transmitBatch.pointee.view()
        one.removeAll()
        one.append(skb)
        devQueueXmit(&one, device: device, worker: worker)
        worker.transmitBatch.pointee.removeAll()
    }
}
