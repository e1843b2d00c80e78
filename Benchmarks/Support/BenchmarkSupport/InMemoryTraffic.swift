import Datapath
import DatapathCore
import DatapathWire

/// Puts `count` 60-byte IPv4 frames on `device`'s receive ring.
public func fill(_ device: MemoryDevice, count: Int, worker: Worker, destination: MACAddress,
                 source: MACAddress = MACAddress(2, 0, 0, 0, 0, 1)) {
    for _ in 0..<count {
        let skb = worker.cache.allocate()!
        let data = skb.put(60)!
        data.initializeMemory(as: UInt8.self, repeating: 0, count: 60)
        let ethernet = EthernetHeader(unchecked: data)
        ethernet.destination = destination
        ethernet.source = source
        ethernet.etherType = .ipv4
        device.inject(skb)
    }
}

/// Receives from `device` into `netif_receive_skb` until `total` packets went through: the
/// measured loop of the receive-path benchmarks, whose handlers put the frames back on a ring.
/// `batch` is the caller's, allocated before the measurement starts.
public func receiveLoop(_ device: MemoryDevice, core: NetCore, worker: Worker, total: Int, batch: inout PacketBatch) {
    var done = 0
    while done < total {
        let n = device.receive(queue: 0, into: &batch, max: 256, worker: worker)
        core.netifReceiveSkb(&batch, worker: worker)
        done &+= n
    }
}

/// Frees everything waiting on `device`'s receive ring.
public func drain(_ device: MemoryDevice, worker: Worker) {
    var batch = PacketBatch()
    while device.receive(queue: 0, into: &batch, max: 256, worker: worker) > 0 { worker.cache.free(&batch) }
}

/// A UDP receiver that frees what it gets (a socket that only sends).
public final class DiscardingReceiver: UDPReceiver, @unchecked Sendable {
    public init() {}
    public func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
        worker.cache.free(&datagrams)
        return 0
    }
}
