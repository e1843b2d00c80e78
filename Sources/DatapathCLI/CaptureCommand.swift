import ArgumentParser
import DatapathCore

/// `datapath capture`: RX ring → tap → pcap.
struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Write the frames received on an interface to a pcap file.")

    @Option(help: "Interface to capture on.") var dev: String
    @Option(help: "Stop after this many frames.") var count: Int?
    @Option(help: "Stop after this many seconds.") var duration: Double?
    @Option(help: "The pcap file to write.") var write: String

    func validate() throws {
        if let count, count <= 0 { throw ValidationError("--count must be positive") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
    }

    func run() throws {
        installStopSignals()
        var configuration = AFPacketDevice.Configuration()
        configuration.transmit = false
        let device: AFPacketDevice
        do { device = try AFPacketDevice(interface: dev, configuration: configuration) } catch { throw CLIError(error) }
        let writer: PcapWriter
        do { writer = try PcapWriter(path: write) } catch { throw CLIError(error) }
        let tap = PcapTap(writer: writer, limit: count ?? .max)
        let pool = try PacketPool(capacity: 4096)
        let core = NetCore()
        core.register(device)
        core.addTap(tap, device: device)
        core.setRxHandler(ConsumeAll(), on: device)
        let workers = WorkerGroup(core: core, pool: pool, count: 1)
        workers.poll(device, queue: 0, on: 0)
        workers.start()
        say("capture: listening on \(dev)")
        let limit = count ?? .max
        runUntilStopped(duration: duration, done: { tap.count >= limit }) { _ in }
        workers.stop()
        tap.close()
        say("capture: \(tap.count) packets")
    }
}

/// Consumes every frame (the tap has seen it): capture needs no protocol handlers.
final class ConsumeAll: RxHandler, @unchecked Sendable {
    func receive(_ batch: inout PacketBatch, worker: Worker) {
        worker.cache.free(&batch)
    }
}
