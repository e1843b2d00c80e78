import ArgumentParser
import Datapath
import DatapathCore

/// `datapath xconnect`: an L2 cross-connect between two interfaces, both directions.
struct XConnectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xconnect",
        abstract: "Cross-connect two interfaces at L2 (zero-copy receive, one copy to transmit).")

    @Argument(help: "First interface.") var first: String
    @Argument(help: "Second interface.") var second: String
    @Option(help: "Stop after this many seconds.") var duration: Double?
    @Option(help: "Worker threads (one RX queue per interface each).") var workers: Int = 1
    @Flag(help: "Busy-poll instead of sleeping in poll(2) when idle.") var busyPoll = false
    @Flag(help: "Exchange no virtio-net headers with the kernel (kernels before 5.8): TSO/GRO super-frames cannot cross then.")
    var noOffload = false
    @Flag(help: "Let the kernel's own stack process the interfaces' received frames too (by default a BPF program on their tcx ingress hook drops them after the packet taps).")
    var kernelRx = false

    func validate() throws {
        if workers < 1 || workers > 64 { throw ValidationError("--workers must be 1...64") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
        if first == second { throw ValidationError("the two interfaces must differ") }
    }

    func run() throws {
        installStopSignals()
        var configuration = AFPacketDevice.Configuration()
        configuration.queues = workers
        configuration.virtioNetHeader = !noOffload
        configuration.kernelReceive = kernelRx
        let a: AFPacketDevice, b: AFPacketDevice
        do {
            a = try AFPacketDevice(interface: first, configuration: configuration)
            b = try AFPacketDevice(interface: second, configuration: configuration)
        } catch { throw CLIError(error) }
        warnIfKernelStillReceives([a, b])
        let pools = try PacketPool.perNode(capacity: 8192 * workers)
        let core = NetCore()
        core.register(a)
        core.register(b)
        XConnect.connect(a, b, on: core, workers: workers)
        let group = WorkerGroup(core: core, pools: pools, count: workers, mode: busyPoll ? .busyPoll : .event)
        group.pollAllQueues(of: [a, b])
        group.start()
        say("xconnect: forwarding \(first) <-> \(second) with \(workers) worker(s)")
        var lastAB: UInt64 = 0, lastBA: UInt64 = 0
        runUntilStopped(duration: duration) { _ in
            let ab = b.stats[.txPackets], ba = a.stats[.txPackets]
            say("xconnect: \(first)->\(second) \(ab - lastAB) pps, \(second)->\(first) \(ba - lastBA) pps")
            lastAB = ab
            lastBA = ba
        }
        group.stop()
        a.collectKernelDrops()
        b.collectKernelDrops()
        let drops = group.workers.reduce(0) { $0 + $1.drops.total }
        say("xconnect: dropped \(drops) in the datapath, \(a.stats[.rxDropped] + b.stats[.rxDropped]) in the kernel's RX rings")
        say("xconnect: \(first)->\(second) \(b.stats[.txPackets]) pkts, \(second)->\(first) \(a.stats[.txPackets]) pkts")
    }
}
