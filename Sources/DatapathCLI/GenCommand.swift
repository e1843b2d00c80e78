import DatapathGenerator
import ArgumentParser
import Foundation
import Datapath
import DatapathCore
import DatapathWire

#if canImport(Glibc)
import Glibc
#endif

/// `datapath gen`: UDP/IPv4 frames through an AF_PACKET TX ring (Linux's pktgen role).
struct GenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen",
        abstract: "Send UDP/IPv4 frames on an interface.")

    @Option(help: "Interface to send on.") var dev: String
    @Option(help: "Source MAC address.") var srcMac: String
    @Option(help: "Destination MAC address.") var dstMac: String
    @Option(help: "Source IPv4 address.") var src: String
    @Option(help: "Destination IPv4 address.") var dst: String
    @Option(help: "UDP source port (the first of --flows ports).") var sport: UInt16 = 1024
    @Option(help: "UDP destination port.") var dport: UInt16 = 9
    @Option(help: "Frame size in bytes including the 4-byte FCS, as RFC 2544 counts (64...9018).") var size: Int = 64
    @Option(help: "Frames to send.") var count: Int = 1000
    @Option(help: "Frames per second (0: as fast as the ring takes them).") var pps: Double = 0
    @Option(help: "Vary the UDP source port (or, with --vary-dst, the destination address) over this many flows.")
    var flows: Int = 1
    @Flag(help: "Flows differ in destination address (--dst, --dst + 1, ...) instead of source port.")
    var varyDst = false
    @Option(help: "Stop after this many seconds even if --count is not reached.") var duration: Double?

    func validate() throws {
        if count <= 0 { throw ValidationError("--count must be positive") }
        if pps < 0 { throw ValidationError("--pps must not be negative") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
    }

    func specification() throws -> UDPFlowGenerator.Specification {
        guard let sourceMAC = MACAddress(srcMac) else { throw ValidationError("--src-mac: not a MAC address: \(srcMac)") }
        guard let destinationMAC = MACAddress(dstMac) else { throw ValidationError("--dst-mac: not a MAC address: \(dstMac)") }
        guard let source = IPv4Address(src) else { throw ValidationError("--src: not an IPv4 address: \(src)") }
        guard let destination = IPv4Address(dst) else { throw ValidationError("--dst: not an IPv4 address: \(dst)") }
        var spec = UDPFlowGenerator.Specification(sourceMAC: sourceMAC, destinationMAC: destinationMAC,
                                                  source: source, destination: destination)
        spec.sourcePort = sport
        spec.destinationPort = dport
        spec.frameSize = size
        spec.flows = flows
        spec.varyDestination = varyDst
        return spec
    }

    func run() throws {
        let generator: UDPFlowGenerator
        do { generator = try UDPFlowGenerator(try specification()) } catch let error as GeneratorError {
            throw CLIError(error.description)
        }
        installStopSignals()
        var configuration = AFPacketDevice.Configuration()
        configuration.receive = false
        // With a virtio-net header each frame is copied whole into its skb (hdr_len), which on a
        // veth costs less than the page fragment the peer would copy anyway.
        configuration.virtioNetHeader = true
        configuration.txFrameSize = UInt32(max(2048, (generator.frameLength + 64 + 15) & ~15))
        let device: AFPacketDevice
        do { device = try AFPacketDevice(interface: dev, configuration: configuration) } catch { throw CLIError(error) }
        if generator.frameLength > device.mtu + 14 {
            throw CLIError("--size \(size) does not fit \(dev)'s MTU \(device.mtu)")
        }
        let pool = try PacketPool(capacity: 1024, bufferSize: max(PacketPool.defaultBufferSize, generator.frameLength + 256))
        let worker = Worker(pool: pool)
        var batch = PacketBatch(capacity: 64)
        let start = monotonicSeconds()
        var queued = 0
        while queued < count && !stopRequested.load(ordering: .relaxed) {
            let elapsed = monotonicSeconds() - start
            if let duration, elapsed >= duration { break }
            var n = min(batch.capacity, count - queued)
            if pps > 0 {
                let allowed = Int(elapsed * pps) + 1 - queued
                if allowed <= 0 {
                    usleep(UInt32(min(1000, max(20, 1e6 / pps))))
                    continue
                }
                n = min(n, allowed)
            }
            let room = device.transmitSpace(queue: 0, limit: n)
            if room < n {
                _ = device.flushTransmit(timeout: .zero)
                if room == 0 {
                    usleep(20)
                    continue
                }
                n = room
            }
            for i in 0..<n {
                guard let skb = worker.cache.allocate() else { break }
                _ = generator.fill(skb, flow: (queued + i) % generator.specification.flows)
                batch.append(skb)
            }
            queued += batch.count
            device.transmit(queue: 0, &batch, worker: worker)
        }
        device.flushTransmit()
        let seconds = max(monotonicSeconds() - start, 1e-9)
        let sent = device.stats[.txPackets]
        let rate = Double(sent) / seconds
        say("gen: sent \(sent) packets in \(String(format: "%.3f", seconds)) s (\(Int(rate)) pps)")
        if device.stats[.txDropped] > 0 { say("gen: \(device.stats[.txDropped]) dropped at the TX ring") }
    }
}
