import DatapathCore
import DatapathWire

/// An L2 cross-connect: every frame received on one device is sent, unchanged, out of another
/// (VPP: `l2 xconnect`; DPDK testpmd: `io` forward; Linux: a `tc mirred redirect` on ingress).
/// Installed as the receiving device's rx_handler, so taps still see the frames first.
///
/// Reads: nothing but the frame. Writes: pushes the Ethernet header back (`eth_type_trans`
/// pulled it). Next: the peer device's `transmit`, on the worker's own queue. Drops: the peer's
/// transmit drops (`.transmitRingFull`, `.packetTooBig`).
public final class XConnect: RxHandler, @unchecked Sendable {
    public let output: any NetDevice
    let forwarded: WorkerLocal<CounterBlock>

    public init(to output: any NetDevice, workers: Int) {
        self.output = output
        self.forwarded = WorkerLocal(workers: max(1, workers)) { _ in CounterBlock(count: 1) }
    }

    /// Frames handed to the output device so far, over all workers.
    public var forwardedCount: UInt64 { forwarded.reduce(0) { $0 &+ $1[0] } }

    public func receive(_ batch: inout PacketBatch, worker: Worker) {
        for i in batch.indices {
            _ = unsafe batch[i].push(EthernetHeader.length)
        }
        forwarded[worker].add(0, UInt64(batch.count))
        output.transmit(queue: output.transmitQueue(for: worker), &batch, worker: worker)
    }

    /// Cross-connects `a` and `b` in both directions on `core`.
    @discardableResult
    public static func connect(_ a: any NetDevice, _ b: any NetDevice, on core: NetCore, workers: Int) -> (XConnect, XConnect) {
        let ab = XConnect(to: b, workers: workers)
        let ba = XConnect(to: a, workers: workers)
        core.setRxHandler(ab, on: a)
        core.setRxHandler(ba, on: b)
        return (ab, ba)
    }
}
