extension NetCore {
    /// Sends a batch of complete frames (`data` at the Ethernet header) out of `device`
    /// (Linux: `dev_queue_xmit` → `dev_hard_start_xmit`, which shows each frame to the taps
    /// with `dev_queue_xmit_nit` before `ndo_start_xmit`).
    ///
    /// Reads: nothing per packet. Writes: the MAC header offset and `packetType = .outgoing`,
    /// only when the device has taps. Next: `device.transmit` on the worker's own queue
    /// (queue = worker index modulo the device's queues). Drops: `.deviceDown` when the
    /// device is administratively down, else whatever the device's transmit counts.
    /// Empties `batch` either way.
    public func devQueueXmit(_ batch: inout PacketBatch, device: any NetDevice, worker: Worker) {
        guard !batch.isEmpty else { return }
        let ifindex = device.ifindex
        guard isAdminUp(ifindex: ifindex) else {
            device.stats.add(queue: worker.index % device.queueCount, .txDropped, UInt64(batch.count))
            worker.drop(&batch, .deviceDown)
            return
        }
        if !globalTaps.isEmpty || !deviceTaps[ifindex].isEmpty {
            for i in batch.indices {
                batch[i].resetMACHeader()
                batch[i].packetType = .outgoing
            }
            deliverTaps(batch, ifindex: ifindex, worker: worker)
        }
        device.transmit(queue: worker.index % device.queueCount, &batch, worker: worker)
    }

    /// Sends one frame (`data` at the Ethernet header): `devQueueXmit` for control traffic
    /// such as ARP replies and probes, through the worker's transmit scratch batch.
    public func devQueueXmit(_ skb: SKB, device: any NetDevice, worker: Worker) {
        var one = worker.scratch[Worker.transmitScratch]
        one.removeAll()
        one.append(skb)
        devQueueXmit(&one, device: device, worker: worker)
        worker.scratch[Worker.transmitScratch].removeAll()
    }
}
