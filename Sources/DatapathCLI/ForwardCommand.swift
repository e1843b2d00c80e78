import ArgumentParser
import Datapath
import DatapathCore
import Foundation

/// `datapath forward`: runs a datapath built from the command language between real interfaces,
/// printing a VPP `show runtime`-style table every second (per stage packets, packets/s,
/// cycles/packet; drops by reason) and at exit the links, routes, FDB, neighbours, the SNMP
/// counters and, with `--stats-json`, the same as JSON.
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Forward between interfaces as a configuration describes (link/addr/route/neigh/bridge commands).",
        discussion: """
            Configuration is iproute2 syntax, one command per line, from --config files and -e \
            arguments, applied all or nothing. Example:
              link add p1 type afpacket dev veth1
              link add p2 type afpacket dev veth2
              link add br0 type bridge
              link set p1 master br0
              link set p2 master br0
            A router:
              link add eth0 type afpacket dev veth-a
              link add eth1 type afpacket dev veth-b
              addr add 198.18.1.1/24 dev eth0
              addr add 198.18.2.1/24 dev eth1
              route add 198.19.0.0/16 via 198.18.2.2
            """)

    @Option(name: [.short, .customLong("config")], help: "A configuration file (may repeat).")
    var configFiles: [String] = []
    @Option(name: .short, help: "One configuration command (may repeat; after the files).")
    var e: [String] = []
    @Option(help: "Stop after this many seconds.") var duration: Double?
    @Option(help: "Worker threads (one RX queue per interface each).") var workers: Int = 1
    @Option(name: .customLong("worker-cpus"),
            help: "CPUs the workers are pinned to, round-robin, as taskset writes them (2,3 or 2-5); the control socket, route mirror and main thread keep the process's CPUs. Default: the CPUs the process may run on.")
    var workerCPUs: String?
    @Flag(help: "Busy-poll instead of sleeping in poll(2) when idle.") var busyPoll = false
    @Flag(help: "Print only the summary at exit, not the per-second stage table.") var quiet = false
    @Option(help: "Write the end-of-run statistics as JSON to this file.") var statsJSON: String?
    @Flag(help: "Turn the per-worker route cache off (every packet looks up the FIB).") var noRouteCache = false
    @Flag(help: "Run every packet stage by stage (no forwarding fast path), to compare.") var noFastPath = false
    @Flag(help: "Exchange no virtio-net headers with the kernel (kernels before 5.8): TSO/GRO super-frames cannot cross then.")
    var noOffload = false
    @Option(help: "Take commands (route/neigh/addr/filter, batch … end, route show, show) on this Unix socket while forwarding (see `datapath ctl`).")
    var control: String?
    @Option(help: "Make the control socket 0660 for this group (default 0600: the owner only).") var controlGroup: String?
    @Flag(help: "Follow the namespace's kernel routing table (main table, not the kernel's own connected routes) and permanent neighbours over rtnetlink, as VPP's linux-cp does: routes BIRD, FRR or `ip route` install are the datapath's too.")
    var mirrorKernelRoutes = false
    @Option(help: "What multipath routes hash to pick a next hop: 0, the addresses; 1, also TCP/UDP ports (Linux's fib_multipath_hash_policy).")
    var multipathHashPolicy: UInt8 = 0
    @Flag(help: "Let the kernel's own stack process the interfaces' received frames too (by default a BPF program on their tcx ingress hook drops them after the packet taps).")
    var kernelRx = false

    func validate() throws {
        if workers < 1 || workers > 64 { throw ValidationError("--workers must be 1...64") }
        if multipathHashPolicy > 1 { throw ValidationError("--multipath-hash-policy must be 0 or 1") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
        if let workerCPUs, WorkerGroup.cpuList(workerCPUs) == nil {
            throw ValidationError("--worker-cpus: '\(workerCPUs)' is not a list of CPUs this machine has (as 1,3 or 2-5)")
        }
        if configFiles.isEmpty && e.isEmpty { throw ValidationError("give a configuration with --config FILE or -e COMMAND") }
    }

    func run() throws {
        installStopSignals()
        let text = try loadConfiguration(files: configFiles, commands: e)
        let stack = Stack(workers: workers, logger: cliLogger)
        stack.afpacketConfiguration.virtioNetHeader = !noOffload
        stack.afpacketConfiguration.kernelReceive = kernelRx
        let applied: AppliedConfiguration
        do { applied = try stack.apply(text) } catch { throw CLIError(error) }
        warnIfKernelStillReceives(stack.links.compactMap { $0.device as? AFPacketDevice })
        if noRouteCache { stack.ipv4.setRouteCacheEnabled(false) }
        stack.ipv4.fastPath = !noFastPath
        stack.ipv4.settings.multipathHashPolicy = multipathHashPolicy
        let pools = try PacketPool.perNode(capacity: 8192 * workers)
        let group = WorkerGroup(core: stack.core, pools: pools, count: workers, mode: busyPoll ? .busyPoll : .event,
                                cpus: workerCPUs.flatMap(WorkerGroup.cpuList))
        group.pollAllQueues(of: stack.receivingDevices)
        stack.start(on: group)
        group.start()
        var controlServer: ControlServer?
        if let control {
            let start = monotonicSeconds()
            let workers = group.workers
            controlServer = try ControlServer(path: control, group: controlGroup, stack: stack) {
                stack.statistics(workers: workers, duration: monotonicSeconds() - start).runtimeTable(since: .empty)
            }
            controlServer?.start()
        }
        defer { controlServer?.stop() }
        var mirror: KernelRouteMirror?
        if mirrorKernelRoutes {
            do {
                mirror = try KernelRouteMirror(stack: stack, logger: cliLogger)
                try mirror?.start()
            } catch {
                group.stop()
                throw CLIError("--mirror-kernel-routes: \(error)")
            }
        }
        defer { mirror?.stop() }
        say("forward: forwarding on \(stack.links.count) link(s) with \(workers) worker(s), \(stack.fib.count) routes")
        let start = monotonicSeconds()
        var last = StackStatistics.empty
        runUntilStopped(duration: duration) { elapsed in
            let now = stack.statistics(workers: group.workers, duration: elapsed)
            if !quiet {
                var text = "forward: t=\(Int(elapsed.rounded()))s\n" + now.runtimeTable(since: last)
                if applied.listsFilter { text += "\nfilter:\n" + stack.showFilter() }
                say(text)
            }
            last = now
        }
        mirror?.stop()
        group.stop()
        if let counts = mirror?.statistics {
            say("kernel route mirror: \(counts.lines) change(s) in \(counts.batches) batch(es), \(counts.refused) refused")
        }
        let final = stack.statistics(workers: group.workers, duration: monotonicSeconds() - start)
        say("runtime (whole run, \(String(format: "%.1f", final.duration)) s):\n" + final.runtimeTable(since: .empty))
        for case let device as AFPacketDevice in stack.receivingDevices { device.collectKernelDrops() }
        say("links:\n\(stack.showLinks())")
        // A table of a few screens is listed; a larger one (a full Internet table) is counted.
        if stack.fib.count > 100 { say(stack.showRouteSummary()) }
        else {
            let routes = stack.showRoutes()
            if !routes.isEmpty { say("routes:\n\(routes)") }
        }
        let fdb = stack.showFDB()
        if !fdb.isEmpty { say("fdb:\n\(fdb)") }
        let filter = stack.showFilter()
        if !filter.isEmpty { say("filter:\n\(filter)") }
        let neighbours = stack.showNeighbours()
        if !neighbours.isEmpty { say("neighbours:\n\(neighbours)") }
        let drops = final.drops.keys.sorted().map { "\($0) \(final.drops[$0]!)" }
        say("drops: " + (drops.isEmpty ? "none" : drops.joined(separator: ", ")))
        say(stack.ipv4.statistics.snmpLines())
        say(stack.ipv4.icmp.statistics.snmpLines())
        say(stack.udp.statistics.snmpLines())
        let cache = stack.ipv4.routeCacheCounters
        say("route cache: hits \(cache.hits) misses \(cache.misses) evictions \(cache.evictions)")
        // Every queue emptied, every pool should be whole again: what is not was lost.
        let held = stack.releaseHeldPackets(workers: group.workers)
            + (group.backlog.map { $0.release(worker: group.workers[0]) } ?? 0)
        let poolsNow = stack.poolCounters(workers: group.workers)
        let lost = poolsNow.reduce(0) { $0 + $1.inUse }
        say(StackStatistics.empty.with(pools: poolsNow).poolLines)
        say(lost == 0 ? "pools: back at baseline (\(held) queued packet(s) freed at exit)"
            : "pools: \(lost) buffer(s) still in use after every queue was freed: lost (a leak)")
        if let statsJSON {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            // Taken again: the links' counters now include the kernel's ring drops.
            let report = stack.statistics(workers: group.workers, duration: final.duration)
            do { try encoder.encode(report).write(to: URL(fileURLWithPath: statsJSON)) }
            catch { throw CLIError("cannot write \(statsJSON): \(error)") }
        }
    }
}
