import Benchmark
import BenchmarkSupport
import Datapath
import DatapathCore
import DatapathWire

// One scaled iteration is one datagram, so `throughput` reads as datagrams/s.
let benchmarks: @Sendable () -> Void = {
    usePacketBenchmarkDefaults()

    // udp_sendmsg (the copying, one-datagram call) → ip_local_out → ip_output → neighbour →
    // dev_queue_xmit on an in-memory device; the wire's side frees each 256.
    for size in [64, 1400] {
        Benchmark("udp_sendmsg → in-memory TX, \(size)-byte payload, one call per datagram") { benchmark in
            let (stack, worker, wire) = sendRig()
            let payload = [UInt8](repeating: 0x5A, count: size)
            let destination = SocketAddress(IPv4Address(198, 18, 2, 2), 9)
            var batch = PacketBatch()
            benchmark.startMeasurement()
            payload.withUnsafeBytes { bytes in
                for i in benchmark.scaledIterations {
                    try! stack.udp.send(bytes, from: 1, to: destination, worker: worker)
                    if i & 255 == 255 {
                        _ = wire.receive(queue: 0, into: &batch, max: 256, worker: worker)
                        worker.cache.free(&batch)
                    }
                }
            }
            benchmark.stopMeasurement()
            drain(wire, worker: worker)
        }
    }

    // The batch send (sendmmsg) as a packet app uses it: 256 skbs from the worker's cache, the
    // payload written into each, one `UDP.send` for the batch (headers in place), TX, freed.
    // Also to a device that offloads checksums, as a NIC does: the stack writes only the
    // pseudo-header sum (CHECKSUM_PARTIAL).
    for offload in [false, true] {
        Benchmark("UDP batch send (sendmmsg) → in-memory TX, 64-byte payload, batches of 256"
                  + (offload ? ", device offloading checksums" : "")) { benchmark in
            let (stack, worker, wire) = sendRig(checksumOffload: offload)
            let destination = SocketAddress(IPv4Address(198, 18, 2, 2), 9)
            var batch = PacketBatch()
            benchmark.startMeasurement()
            for _ in 0..<(benchmark.scaledIterations.count / 256) {
                for _ in 0..<256 {
                    let skb = worker.cache.allocate()!
                    skb.put(64)!.initializeMemory(as: UInt8.self, repeating: 0x5A, count: 64)
                    skb.udpDestination = destination
                    batch.append(skb)
                }
                _ = try! stack.udp.send(&batch, from: 1, worker: worker)
                _ = wire.receive(queue: 0, into: &batch, max: 256, worker: worker)
                worker.cache.free(&batch)
            }
            benchmark.stopMeasurement()
            drain(wire, worker: worker)
        }
    }

    Benchmark("udp_rcv → run-to-completion handler, in-memory RX, 64-byte payload") { benchmark in
        let rig = try! UDPRig(mode: .consume)
        benchmark.startMeasurement()
        rig.run(datagrams: benchmark.scaledIterations.count)
        benchmark.stopMeasurement()
        precondition(rig.stack.udp.statistics[.inDatagrams] >= UInt64(benchmark.scaledIterations.count))
        rig.drainRing()
    }

    // The async API: the benchmark's task and the stack's worker thread on different cores
    // (this VM has two), the datagrams crossing both ways on the sockets' SPSC rings.
    Benchmark("UDPSocket echo round, async API: receive(max:) + trySend, worker on its own thread, 64-byte payload") {
        benchmark in
        let rig = try! AsyncUDPRig()
        benchmark.startMeasurement()
        let echoed = try! await rig.run(datagrams: benchmark.scaledIterations.count)
        benchmark.stopMeasurement()
        precondition(echoed >= benchmark.scaledIterations.count)
        rig.stop()
    }

    Benchmark("UDP echo round, in-memory: RX → udp_rcv → handler → batch send → TX, 64-byte payload") { benchmark in
        let rig = try! UDPRig(mode: .echo)
        benchmark.startMeasurement()
        rig.run(datagrams: benchmark.scaledIterations.count)
        benchmark.stopMeasurement()
        precondition(rig.stack.udp.statistics[.outDatagrams] >= UInt64(benchmark.scaledIterations.count))
        rig.drainRing()
    }

    Benchmark("UDP echo round, in-memory, devices offloading checksums both ways (as NICs), 64-byte payload") { benchmark in
        let rig = try! UDPRig(mode: .echo, checksumOffload: true)
        benchmark.startMeasurement()
        rig.run(datagrams: benchmark.scaledIterations.count)
        benchmark.stopMeasurement()
        precondition(rig.stack.udp.statistics[.outDatagrams] >= UInt64(benchmark.scaledIterations.count))
        rig.drainRing()
    }
}

/// A stack with socket 1 bound to 198.18.2.1:5000 on eth1 (198.18.2.0/24, 198.18.2.2 a static
/// neighbour), eth1 wired to `wire`; `checksumOffload`: eth1 takes partial checksums.
func sendRig(checksumOffload: Bool = false) -> (Stack, Worker, MemoryDevice) {
    let worker = Worker(pool: try! PacketPool(capacity: 4096))
    let stack = Stack(workers: 1)
    let (eth1, wire) = MemoryDevice.pair("eth1", MACAddress(2, 0, 0, 0, 0, 2), "wire1", MACAddress(2, 0, 0, 0, 0, 3),
                                         ringSize: 1024)
    eth1.supportsChecksumOffload = checksumOffload
    try! stack.addDevice(eth1)
    try! stack.apply("addr add 198.18.2.1/24 dev eth1\nneigh add 198.18.2.2 lladdr 02:00:00:00:00:03 dev eth1")
    try! stack.udp.open(1, local: SocketAddress(IPv4Address(198, 18, 2, 1), 5000), receiver: Discard())
    return (stack, worker, wire)
}

final class Discard: UDPReceiver, @unchecked Sendable {
    func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
        worker.cache.free(&datagrams)
        return 0
    }
}
