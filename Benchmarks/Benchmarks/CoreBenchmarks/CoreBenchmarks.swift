import Benchmark
import BenchmarkSupport
import CDatapath
import DatapathCore
import DatapathWire
import Foundation

// One scaled iteration is one packet, so `throughput` reads directly as packets/s.
let packetsPerIteration = 1_000_000

let benchmarks: @Sendable () -> Void = {
    usePacketBenchmarkDefaults()

    Benchmark("Pool alloc+free, single") { benchmark in
        let pool = try! PacketPool(capacity: 4096)
        let worker = Worker(pool: pool)
        let cache = worker.cache
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            // alloc and free write pool memory, so neither can be optimised away.
            cache.free(cache.allocate()!)
        }
    }

    Benchmark("Pool alloc+free, batch of 32") { benchmark in
        let pool = try! PacketPool(capacity: 4096)
        let worker = Worker(pool: pool)
        let cache = worker.cache
        var batch = PacketBatch(capacity: 32)
        benchmark.startMeasurement()
        for _ in 0..<(benchmark.scaledIterations.count / 32) {
            _ = cache.allocateBulk(batch.slots, count: 32)
            batch.count = 32
            cache.free(&batch)
        }
    }

    // A retransmit-style timer: re-armed (mod_timer) on every "packet", firing now and then.
    // Embedded in its owner and kind-tagged, so it allocates nothing (mallocs must read 0).
    Benchmark("Embedded timer re-arm, 1024 timers, 1 ms wheel") { benchmark in
        final class Owner: TimerHandler {
            var fired = 0
            func timerFired(_ kind: TimerKind, context: UInt64, wheel: TimerWheel) { fired &+= 1 }
        }
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock)
        let owner = Owner()
        let kind = wheel.register(owner)
        var timers = (0..<1024).map { WheelTimer(kind: kind, context: UInt64($0)) }
        for i in timers.indices { wheel.arm(&timers[i], after: .milliseconds(200)) }
        benchmark.startMeasurement()
        var now: UInt64 = 0
        for i in benchmark.scaledIterations {
            now &+= 1_000
            clock.set(now)
            wheel.arm(&timers[i & 1023], after: .milliseconds(200))
            if i & 1023 == 0 { wheel.run() }
        }
        blackHole(owner.fired)
    }

    Benchmark("netif_receive_skb dispatch, in-memory device") { benchmark in
        let pool = try! PacketPool(capacity: 4096)
        let worker = Worker(pool: pool)
        let core = NetCore()
        let device = MemoryDevice(name: "mem0", macAddress: MACAddress(2, 0, 0, 0, 0, 2), ringSize: 1024)
        core.register(device)
        let recycler = Recycler(device: device)
        core.addPacketType(.ipv4, recycler)
        fill(device, count: 512, worker: worker, destination: device.macAddress)
        var batch = PacketBatch()
        benchmark.startMeasurement()
        receiveLoop(device, core: core, worker: worker, total: benchmark.scaledIterations.count, batch: &batch)
        benchmark.stopMeasurement()
        drain(device, worker: worker)
    }

    Benchmark("SPSC handoff, two pinned threads, bursts of 32") { benchmark in
        let ring = SPSCRing(capacity: 1024)
        let total = benchmark.scaledIterations.count
        let producer = Thread {
            _ = CDatapath_pin_current_thread(1)
            var items = [UnsafeMutableRawPointer](repeating: UnsafeMutableRawPointer(bitPattern: 1)!, count: 32)
            var sent = 0
            while sent < total {
                let n = min(32, total - sent)
                sent += items.withUnsafeMutableBufferPointer { ring.enqueueBurst($0.baseAddress!, count: n) }
            }
        }
        _ = CDatapath_pin_current_thread(0)
        let out = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: 32)
        benchmark.startMeasurement()
        producer.start()
        var received = 0
        while received < total { received += ring.dequeueBurst(into: out, max: 32) }
    }

    Benchmark("pcap tap write, 60-byte frames to /dev/null") { benchmark in
        let pool = try! PacketPool(capacity: 4096)
        let worker = Worker(pool: pool)
        let device = MemoryDevice(name: "mem0", macAddress: MACAddress(2, 0, 0, 0, 0, 2))
        let tap = PcapTap(writer: try! PcapWriter(path: "/dev/null"))
        var batch = PacketBatch(capacity: 32)
        for _ in 0..<32 {
            let skb = worker.cache.allocate()!
            _ = skb.put(60)
            batch.append(skb)
        }
        benchmark.startMeasurement()
        for _ in 0..<(benchmark.scaledIterations.count / 32) {
            tap.tap(batch, device: device, worker: worker)
        }
        benchmark.stopMeasurement()
        worker.cache.free(&batch)
        tap.close()
    }
}

/// Puts every packet back on the device it came from, Ethernet header restored, so the
/// dispatch benchmark measures receive and dispatch, not allocation.
final class Recycler: PacketTypeHandler, @unchecked Sendable {
    let device: MemoryDevice
    init(device: MemoryDevice) { self.device = device }
    func receive(_ batch: inout PacketBatch, worker: Worker) {
        for i in batch.indices { _ = batch[i].push(14) }
        device.inject(&batch)
    }
}
