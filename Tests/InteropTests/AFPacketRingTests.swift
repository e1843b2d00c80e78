import DatapathGenerator
import Foundation
import Testing
import Datapath
import DatapathCore
import DatapathWire

#if canImport(Glibc)
import Glibc
#endif

/// The zero-copy contract of `AFPacketDevice`, in process, on a veth pair in a namespace this
/// test makes: RX skbs point into ring blocks; a block goes back to the kernel only when every
/// skb in it is freed; the pool returns to its baseline.
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct AFPacketRingTests {
    @Test func ringBlocksReturnOnlyWhenTheirLastSkbIsFreed() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let ns = try lab.namespace("ring")
        try lab.veth("r0", in: ns, mac: "02:00:00:00:00:01", "r1", in: ns, mac: "02:00:00:00:00:02")
        let outcome = try inNamespace(ns) { () throws -> String in
            // A small RX ring: 4 blocks of 64 KiB, 2 KiB frames → at most 128 frames in the ring.
            var rxConfig = AFPacketDevice.Configuration()
            rxConfig.transmit = false
            rxConfig.rxBlockSize = 1 << 16
            rxConfig.rxBlockCount = 4
            rxConfig.rxRetireMilliseconds = 1
            let receiver = try AFPacketDevice(interface: "r1", configuration: rxConfig)
            var txConfig = AFPacketDevice.Configuration()
            txConfig.receive = false
            let sender = try AFPacketDevice(interface: "r0", configuration: txConfig)
            var spec = UDPFlowGenerator.Specification(
                sourceMAC: MACAddress(2, 0, 0, 0, 0, 1), destinationMAC: MACAddress(2, 0, 0, 0, 0, 2),
                source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 0, 2))
            spec.frameSize = 1024
            let generator = try UDPFlowGenerator(spec)
            let pool = try PacketPool(capacity: 4096)
            let worker = Worker(pool: pool)
            var batch = PacketBatch(), held = PacketBatch(capacity: 4096)

            func send(_ count: Int) {
                var left = count
                while left > 0 {
                    let n = min(32, left)
                    for _ in 0..<n {
                        let skb = worker.cache.allocate()!
                        _ = generator.fill(skb, flow: 0)
                        batch.append(skb)
                    }
                    sender.transmit(queue: 0, &batch, worker: worker)
                    sender.flushTransmit()
                    left -= n
                }
            }
            func receiveAll(into target: inout PacketBatch, until count: Int) -> Int {
                var got = 0
                let deadline = Date().addingTimeInterval(3)
                while got < count && Date() < deadline {
                    let n = receiver.receive(queue: 0, into: &target, max: min(256, target.capacity - target.count), worker: worker)
                    got += n
                    if n == 0 { usleep(2000) }
                }
                return got
            }

            // 1. Receive 100 frames and hold them: the data lives in the ring, not the pool.
            send(100)
            let first = receiveAll(into: &held, until: 100)
            guard first == 100 else { return "held: received \(first) of 100" }
            guard held[0].isRingBacked, held[0].bytes.count == 1020, Array(held[0].bytes[0..<6]) == [2, 0, 0, 0, 0, 2] else {
                return "held skb is not a ring-backed copy of the frame"
            }
            // 2. While they are held, the ring fills and the kernel drops (held blocks stay ours).
            _ = receiver.collectKernelDrops()
            send(400)
            usleep(20_000)
            var extra = PacketBatch(capacity: 1024)
            let whileHeld = receiveAll(into: &extra, until: 400)
            worker.cache.free(&extra)
            let drops = receiver.collectKernelDrops()
            guard drops > 0, whileHeld < 400 else { return "no kernel drops while blocks were held (received \(whileHeld), drops \(drops))" }
            // 3. Free the held skbs: their blocks go back, and 20 000 more frames flow through a
            //    128-frame ring without loss when every batch is freed as it is received. Bursts
            //    of 50 leave room for the block the kernel is still filling and the one being
            //    walked, even when other suites load both CPUs.
            worker.cache.free(&held)
            _ = receiver.collectKernelDrops()
            var received = 0
            for _ in 0..<400 {
                send(50)
                received += receiveAll(into: &batch, until: 50)
                worker.cache.free(&batch)
            }
            let lateDrops = receiver.collectKernelDrops()
            guard received == 20_000, lateDrops == 0 else { return "after freeing: received \(received) of 20000, kernel drops \(lateDrops)" }
            // 4. Clones outlive their original; the pool is back to its baseline at the end.
            send(1)
            guard receiveAll(into: &batch, until: 1) == 1, let clone = worker.cache.clone(batch[0]),
                  let copy = worker.cache.copy(batch[0]) else { return "clone/copy failed" }
            worker.cache.free(&batch)
            guard clone.bytes == copy.bytes, clone.isRingBacked, !copy.isRingBacked else { return "clone/copy content" }
            worker.cache.free(clone)
            worker.cache.free(copy)
            guard pool.inUseCount == 0 else { return "pool not at baseline: \(pool.inUseCount) in use" }
            return "ok"
        }
        #expect(outcome == "ok")
    }
}
