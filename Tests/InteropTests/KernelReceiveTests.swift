import DatapathGenerator
import Foundation
import Testing
import Datapath
import DatapathCore
import DatapathWire

#if canImport(Glibc)
import Glibc
#endif

/// `AFPacketDevice.Configuration.kernelReceive` off, on a veth pair in a namespace this test
/// makes: the kernel's own stack stops processing the interface's frames (the namespace's
/// `Ip: InReceives` stays where it was) while the ring still gets every one, and the drop
/// program goes with the device.
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct KernelReceiveTests {
    @Test func theKernelStopsProcessingAnOwnedInterfaceUntilTheDeviceCloses() throws {
        let lab = try Lab()
        defer { lab.destroy() }
        let ns = try lab.namespace("krx")
        try lab.veth("k0", in: ns, mac: "02:00:00:00:00:01", "k1", in: ns, mac: "02:00:00:00:00:02")
        let outcome = try inNamespace(ns) { () throws -> String in
            var txConfig = AFPacketDevice.Configuration()
            txConfig.receive = false
            let sender = try AFPacketDevice(interface: "k0", configuration: txConfig)
            let spec = UDPFlowGenerator.Specification(
                sourceMAC: MACAddress(2, 0, 0, 0, 0, 1), destinationMAC: MACAddress(2, 0, 0, 0, 0, 2),
                source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 0, 2))
            let generator = try UDPFlowGenerator(spec)
            let pool = try PacketPool(capacity: 1024)
            let worker = Worker(pool: pool)
            var batch = PacketBatch()

            // The namespace's own IPv4 input counter (this thread's namespace, not the process's).
            func kernelInReceives() -> UInt64 {
                let text = (try? String(contentsOfFile: "/proc/thread-self/net/snmp", encoding: .utf8)) ?? ""
                return snmpValues(text, "Ip")["InReceives"] ?? 0
            }
            func send(_ count: Int) {
                for _ in 0..<count {
                    let skb = worker.cache.allocate()!
                    _ = generator.fill(skb, flow: 0)
                    batch.append(skb)
                }
                sender.transmit(queue: 0, &batch, worker: worker)
                sender.flushTransmit()
            }
            func receive(_ device: AFPacketDevice, _ count: Int) -> Int {
                var got = 0
                let deadline = Date().addingTimeInterval(3)
                while got < count && Date() < deadline {
                    let n = device.receive(queue: 0, into: &batch, max: 64, worker: worker)
                    worker.cache.free(&batch)
                    got += n
                    if n == 0 { usleep(2000) }
                }
                return got
            }
            /// Sends 100 frames to `device`; returns what its ring got and how far the kernel's
            /// counter moved.
            func exchange(_ device: AFPacketDevice) -> (received: Int, kernel: UInt64) {
                let before = kernelInReceives()
                send(100)
                let received = receive(device, 100)
                usleep(20_000)
                return (received, kernelInReceives() - before)
            }

            var rxConfig = AFPacketDevice.Configuration()
            rxConfig.transmit = false
            do {
                let shared = try AFPacketDevice(interface: "k1", configuration: rxConfig)
                let (received, kernel) = exchange(shared)
                guard shared.kernelReceives, received == 100, kernel >= 100 else {
                    return "shared: ring got \(received) of 100, kernel InReceives +\(kernel) (want >= 100)"
                }
            }
            rxConfig.kernelReceive = false
            do {
                let owned = try AFPacketDevice(interface: "k1", configuration: rxConfig)
                if let error = owned.kernelReceiveError { return "owned: \(error)" }
                let (received, kernel) = exchange(owned)
                guard !owned.kernelReceives, received == 100, kernel == 0 else {
                    return "owned: ring got \(received) of 100, kernel InReceives +\(kernel) (want 0)"
                }
            }
            // The device is gone, its link fd closed: the kernel processes the frames again.
            let before = kernelInReceives()
            for _ in 0..<20 where kernelInReceives() - before < 100 {
                send(100)
                usleep(20_000)
            }
            guard kernelInReceives() - before >= 100 else { return "after close: kernel InReceives did not resume" }
            guard pool.inUseCount == 0 else { return "pool not at baseline: \(pool.inUseCount) in use" }
            return "ok"
        }
        #expect(outcome == "ok")
    }
}
