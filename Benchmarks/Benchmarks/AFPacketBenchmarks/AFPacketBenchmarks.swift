import Benchmark
import BenchmarkSupport
import Datapath
import DatapathGenerator
import DatapathCore
import DatapathWire
import Foundation

// AF_PACKET on real veth interfaces. Needs root and interfaces in a namespace made for the
// purpose: run it through `Scripts/bench-afpacket`, which makes the namespace and two veth
// pairs (a0-a1, b0-b1) and passes their names in DATAPATH_BENCH_VETH. Without them no
// benchmark is registered, and the reason is printed.
// One scaled iteration is one packet: `throughput` reads as packets/s.
let benchmarks: @Sendable () -> Void = {
    usePacketBenchmarkDefaults(scalingFactor: .kilo, maxIterations: 200)

    guard let names = ProcessInfo.processInfo.environment["DATAPATH_BENCH_VETH"]?.split(separator: ","),
          names.count == 4 else {
        print("AFPacketBenchmarks: skipped: DATAPATH_BENCH_VETH is not set (run Scripts/bench-afpacket as root)")
        return
    }
    let (a0, a1, b0, b1) = (String(names[0]), String(names[1]), String(names[2]), String(names[3]))

    Benchmark("AF_PACKET TX ring, 64-byte frames, veth") { benchmark in
        let lab = try! VethLab(sender: a0)
        benchmark.startMeasurement()
        var sent = 0
        let total = benchmark.scaledIterations.count
        while sent < total { sent += lab.send(min(32, total - sent)) }
        benchmark.stopMeasurement()
        lab.sender.flushTransmit()
    }

    Benchmark("AF_PACKET RX ring, 64-byte frames, veth (zero-copy)") { benchmark in
        let lab = try! VethLab(sender: a0)
        let receiver = try! AFPacketDevice(interface: a1)
        var batch = PacketBatch()
        let total = benchmark.scaledIterations.count
        var received = 0
        benchmark.startMeasurement()
        var idle = 0
        while received < total && idle < 1000 {
            _ = lab.send(32)
            let n = receiver.receive(queue: 0, into: &batch, max: 256, worker: lab.worker)
            received += n
            idle = n == 0 ? idle + 1 : 0
            lab.worker.cache.free(&batch)
        }
        benchmark.stopMeasurement()
    }

    Benchmark("xconnect end to end, veth a1 -> b1, one core") { benchmark in
        let lab = try! VethLab(sender: a0)
        let core = NetCore()
        let input = try! AFPacketDevice(interface: a1)
        let output = try! AFPacketDevice(interface: b1)
        let sink = try! AFPacketDevice(interface: b0)
        core.register(input)
        core.register(output)
        core.setRxHandler(XConnect(to: output, workers: 1), on: input)
        var batch = PacketBatch()
        let total = benchmark.scaledIterations.count
        var delivered = 0
        var idle = 0
        benchmark.startMeasurement()
        while delivered < total && idle < 1000 {
            _ = lab.send(32)
            if input.receive(queue: 0, into: &batch, max: 256, worker: lab.worker) > 0 {
                core.netifReceiveSkb(&batch, worker: lab.worker)
            }
            let n = sink.receive(queue: 0, into: &batch, max: 256, worker: lab.worker)
            delivered += n
            idle = n == 0 ? idle + 1 : 0
            lab.worker.cache.free(&batch)
        }
        benchmark.stopMeasurement()
    }
}

/// A sender of 64-byte UDP frames on one veth end.
final class VethLab {
    let sender: AFPacketDevice
    let worker: Worker
    let generator: UDPFlowGenerator
    var batch = PacketBatch(capacity: 32)
    var sent = 0

    init(sender name: String) throws {
        var configuration = AFPacketDevice.Configuration()
        configuration.receive = false
        sender = try AFPacketDevice(interface: name, configuration: configuration)
        worker = Worker(pool: try PacketPool(capacity: 8192))
        var spec = UDPFlowGenerator.Specification(
            sourceMAC: MACAddress(2, 0, 0, 0, 0, 1), destinationMAC: MACAddress(2, 0, 0, 0, 0, 2),
            source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 0, 2))
        spec.flows = 16
        generator = try UDPFlowGenerator(spec)
    }


    /// Sends up to `count` frames; returns how many the TX ring took.
    func send(_ count: Int) -> Int {
        let n = min(count, sender.transmitSpace(queue: 0, limit: count))
        guard n > 0 else {
            sender.flushTransmit(timeout: .zero)
            return 0
        }
        for i in 0..<n {
            let skb = worker.cache.allocate()!
            _ = generator.fill(skb, flow: (sent + i) & 15)
            batch.append(skb)
        }
        sender.transmit(queue: 0, &batch, worker: worker)
        sent += n
        return n
    }
}
