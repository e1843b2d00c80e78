import ArgumentParser
import Datapath
import DatapathCore
import Foundation

/// `datapath forward`: runs a datapath built from the command language between real interfaces,
/// printing packets/s per stage every second and the links, FDB and neighbours at exit.
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run the datapath a configuration describes (link/addr/route/neigh/bridge commands).",
        discussion: """
            Configuration is iproute2 syntax, one command per line, from --config files and -e \
            arguments, applied all or nothing. Example:
              link add p1 type afpacket dev veth1
              link add p2 type afpacket dev veth2
              link add br0 type bridge
              link set p1 master br0
              link set p2 master br0
            """)

    @Option(name: [.short, .customLong("config")], help: "A configuration file (may repeat).")
    var configFiles: [String] = []
    @Option(name: .short, help: "One configuration command (may repeat; after the files).")
    var e: [String] = []
    @Option(help: "Stop after this many seconds.") var duration: Double?
    @Option(help: "Worker threads (one RX queue per interface each).") var workers: Int = 1
    @Flag(help: "Busy-poll instead of sleeping in poll(2) when idle.") var busyPoll = false
    @Flag(help: "Print only the summary at exit, not the per-second stage rates.") var quiet = false

    func validate() throws {
        if workers < 1 || workers > 64 { throw ValidationError("--workers must be 1...64") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
        if configFiles.isEmpty && e.isEmpty { throw ValidationError("give a configuration with --config FILE or -e COMMAND") }
    }

    func run() throws {
        installStopSignals()
        var text = ""
        for file in configFiles {
            guard let contents = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CLIError("cannot read configuration \(file)")
            }
            text += contents + "\n"
        }
        text += e.joined(separator: "\n")
        let stack = Stack(workers: workers)
        do { try stack.apply(text) } catch { throw CLIError(error) }
        let pools = try PacketPool.perNode(capacity: 8192 * workers)
        let group = WorkerGroup(core: stack.core, pools: pools, count: workers, mode: busyPoll ? .busyPoll : .event)
        group.pollAllQueues(of: stack.receivingDevices)
        stack.start(on: group)
        group.start()
        say("forward: running \(stack.links.count) link(s) with \(workers) worker(s)")
        var last: [StageID: UInt64] = [:]
        runUntilStopped(duration: duration) { _ in
            let now = stagePackets(group)
            if !quiet {
                let rates = now.keys.sorted { $0.rawValue < $1.rawValue }.compactMap { stage -> String? in
                    let delta = now[stage]! - (last[stage] ?? 0)
                    return delta == 0 ? nil : "\(stage.name) \(delta)"
                }
                say("forward: pps " + (rates.isEmpty ? "idle" : rates.joined(separator: ", ")))
            }
            last = now
        }
        group.stop()
        for case let device as AFPacketDevice in stack.receivingDevices { device.collectKernelDrops() }
        say("links:\n\(stack.showLinks())")
        let routes = stack.showRoutes()
        if !routes.isEmpty { say("routes:\n\(routes)") }
        let fdb = stack.showFDB()
        if !fdb.isEmpty { say("fdb:\n\(fdb)") }
        let neighbours = stack.showNeighbours()
        if !neighbours.isEmpty { say("neighbours:\n\(neighbours)") }
        let drops = DropReason.allCases.compactMap { reason -> String? in
            let n = group.workers.reduce(0) { $0 + $1.drops[reason] }
            return n == 0 ? nil : "\(reason) \(n)"
        }
        say("drops: " + (drops.isEmpty ? "none" : drops.joined(separator: ", ")))
    }

    /// Packets per stage so far, summed over workers.
    func stagePackets(_ group: WorkerGroup) -> [StageID: UInt64] {
        var totals: [StageID: UInt64] = [:]
        for stage in StageID.all {
            let packets = group.workers.reduce(0) { $0 + $1.stages.packets(stage) }
            if packets > 0 { totals[stage] = packets }
        }
        return totals
    }
}
