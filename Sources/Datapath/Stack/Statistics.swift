import DatapathCore

/// The stack's counters at one moment, as a value (Linux has them spread over
/// `/proc/net/snmp`, `ip -s link`, `/sys/kernel/debug/…`; VPP's `show runtime` has the per-stage
/// part): per-stage packets and cycles and drops by reason summed over a group's workers, the
/// SNMP counters, the route caches and each link's counters. `Codable`, so a live table, an
/// exit report and a JSON file all render from the same snapshot; the JSON keys are snake_case
/// (`duration_s`, `cycles_per_packet`, `route_cache`, `rx_packets` …) and the SNMP counters keep
/// the names /proc/net/snmp gives them.
///
/// Taking one reads counters workers are writing (aligned 64-bit loads: each counter is whole,
/// the set is not one instant). Safe while workers run.
public struct StackStatistics: Codable, Sendable, Equatable {
    /// Seconds since whatever the taker counts from (the forwarder: its start).
    public var duration: Double
    public var stages: [Stage]
    /// Drops by reason name (`IP_TTL_EXPIRED` …), only reasons counted at least once.
    public var drops: [String: UInt64]
    public var snmp: SNMP
    public var routeCache: RouteCacheCounters
    public var links: [LinkCounters]
    /// The packet pools the stack's workers allocate from (absent from JSON written before
    /// they were counted: decoded as none).
    public var pools: [PoolCounters] = []

    /// One packet pool: its buffers in use (in skbs anywhere — in flight, queued, held) and free.
    public struct PoolCounters: Codable, Sendable, Equatable {
        public var name: String
        public var buffers: Int
        public var bufferSize: Int
        public var inUse: Int
        public var free: Int

        public init(name: String, buffers: Int, bufferSize: Int, inUse: Int, free: Int) {
            self.name = name
            self.buffers = buffers
            self.bufferSize = bufferSize
            self.inUse = inUse
            self.free = free
        }

        enum CodingKeys: String, CodingKey {
            case name, buffers, bufferSize = "buffer_size", inUse = "in_use", free
        }
    }

    public struct Stage: Codable, Sendable, Equatable {
        public var name: String
        public var packets: UInt64
        public var cycles: UInt64
        /// Cycles per packet over the whole count (0 when no packet).
        public var cyclesPerPacket: Double {
            packets == 0 ? 0 : Double(cycles) / Double(packets)
        }

        enum CodingKeys: String, CodingKey { case name, packets, cycles, cyclesPerPacket = "cycles_per_packet" }

        public init(name: String, packets: UInt64, cycles: UInt64) {
            self.name = name
            self.packets = packets
            self.cycles = cycles
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            packets = try container.decode(UInt64.self, forKey: .packets)
            cycles = try container.decodeIfPresent(UInt64.self, forKey: .cycles) ?? 0
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(packets, forKey: .packets)
            try container.encode(cycles, forKey: .cycles)
            try container.encode(cyclesPerPacket, forKey: .cyclesPerPacket)
        }
    }

    /// `Ip:`/`IpExt:`, `Icmp:` and `Udp:` counters by their /proc/net/snmp names.
    public struct SNMP: Codable, Sendable, Equatable {
        public var ip: [String: UInt64]
        public var icmp: [String: UInt64]
        public var udp: [String: UInt64]
        enum CodingKeys: String, CodingKey { case ip = "Ip", icmp = "Icmp", udp = "Udp" }
    }

    public struct RouteCacheCounters: Codable, Sendable, Equatable {
        public var hits: UInt64
        public var misses: UInt64
        public var evictions: UInt64
    }

    /// One link's counters (Linux: `ip -s link`).
    public struct LinkCounters: Codable, Sendable, Equatable {
        public var name: String
        public var rxPackets, rxBytes, rxDropped, rxErrors: UInt64
        public var txPackets, txBytes, txDropped, txErrors: UInt64

        enum CodingKeys: String, CodingKey {
            case name
            case rxPackets = "rx_packets", rxBytes = "rx_bytes", rxDropped = "rx_dropped", rxErrors = "rx_errors"
            case txPackets = "tx_packets", txBytes = "tx_bytes", txDropped = "tx_dropped", txErrors = "tx_errors"
        }
    }

    enum CodingKeys: String, CodingKey {
        case duration = "duration_s", stages, drops, snmp, routeCache = "route_cache", links, pools
    }

    public init(duration: Double, stages: [Stage], drops: [String: UInt64], snmp: SNMP, routeCache: RouteCacheCounters,
                links: [LinkCounters], pools: [PoolCounters] = []) {
        self.duration = duration
        self.stages = stages
        self.drops = drops
        self.snmp = snmp
        self.routeCache = routeCache
        self.links = links
        self.pools = pools
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        duration = try container.decode(Double.self, forKey: .duration)
        stages = try container.decode([Stage].self, forKey: .stages)
        drops = try container.decode([String: UInt64].self, forKey: .drops)
        snmp = try container.decode(SNMP.self, forKey: .snmp)
        routeCache = try container.decode(RouteCacheCounters.self, forKey: .routeCache)
        links = try container.decode([LinkCounters].self, forKey: .links)
        pools = try container.decodeIfPresent([PoolCounters].self, forKey: .pools) ?? []
    }

    /// The same counters with `pools` in place of these.
    public func with(pools: [PoolCounters]) -> StackStatistics {
        var copy = self
        copy.pools = pools
        return copy
    }

    /// One line per pool: `pool NAME: N in use, M free of B (S-byte buffers)`.
    public var poolLines: String {
        pools.map { "pool \($0.name): \($0.inUse) in use, \($0.free) free of \($0.buffers) (\($0.bufferSize)-byte buffers)" }
            .joined(separator: "\n")
    }

    /// The table `datapath forward` prints each second (VPP's `show runtime`): per stage its
    /// total packets, packets/s and cycles per packet over the interval since `previous`; then
    /// drops by reason with their rate. Against an empty `previous` (duration 0), the whole run.
    package func runtimeTable(since previous: StackStatistics) -> String {
        let interval = max(duration - previous.duration, 1e-9)
        func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, width - text.count))
            return left ? text + fill : fill + text
        }
        func rate(_ value: Double) -> String { String(Int64(value.rounded())) }
        var lines = [pad("Stage", 24, left: true) + pad("Packets", 14) + pad("Packets/s", 13) + pad("Cycles/pkt", 12)]
        let before = Dictionary(previous.stages.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for stage in stages {
            let earlier = before[stage.name]
            let packets = stage.packets &- (earlier?.packets ?? 0)
            let cycles = stage.cycles &- (earlier?.cycles ?? 0)
            let perPacket = packets == 0 ? "-" : String(Double(Int64((Double(cycles) / Double(packets) * 10).rounded())) / 10)
            lines.append(pad(stage.name, 24, left: true) + pad(String(stage.packets), 14)
                         + pad(rate(Double(packets) / interval), 13) + pad(perPacket, 12))
        }
        if !drops.isEmpty {
            lines.append(pad("Drop reason", 24, left: true) + pad("Packets", 14) + pad("Packets/s", 13))
            for name in drops.keys.sorted() {
                let delta = drops[name]! &- (previous.drops[name] ?? 0)
                lines.append(pad(name, 24, left: true) + pad(String(drops[name]!), 14)
                             + pad(rate(Double(delta) / interval), 13))
            }
        }
        if !pools.isEmpty { lines.append(poolLines) }
        return lines.joined(separator: "\n")
    }

    /// A snapshot with nothing counted (the start of a run).
    public static let empty = StackStatistics(duration: 0, stages: [], drops: [:], snmp: SNMP(ip: [:], icmp: [:], udp: [:]),
                                              routeCache: RouteCacheCounters(hits: 0, misses: 0, evictions: 0),
                                              links: [])
}

extension Stack {
    /// The counters now, per-stage and drop counts summed over `workers` (the group driving the
    /// stack), `duration` seconds into whatever the caller measures. Safe while workers run.
    public func statistics(workers: [Worker], duration: Double) -> StackStatistics {
        var stages: [StackStatistics.Stage] = []
        for stage in StageID.all {
            let packets = workers.reduce(0) { $0 &+ $1.stages.packets(stage) }
            let cycles = workers.reduce(0) { $0 &+ $1.stages.cycles(stage) }
            if packets > 0 { stages.append(StackStatistics.Stage(name: stage.name, packets: packets, cycles: cycles)) }
        }
        var drops: [String: UInt64] = [:]
        for worker in workers {
            for (reason, count) in worker.drops.counted { drops[reason.description, default: 0] &+= count }
        }
        var ip: [String: UInt64] = [:]
        for counter in IPStatistics.Counter.allCases { ip[counter.description] = ipv4.statistics[counter] }
        var icmp: [String: UInt64] = [:]
        for counter in ICMPStatistics.Counter.allCases { icmp[counter.description] = ipv4.icmp.statistics[counter] }
        var udp: [String: UInt64] = [:]
        for counter in UDPStatistics.Counter.allCases { udp[counter.description] = self.udp.statistics[counter] }
        let cache = ipv4.routeCacheCounters
        let links = links.map { link in
            let c = link.device.stats.snapshot()
            return StackStatistics.LinkCounters(name: link.name, rxPackets: c.rxPackets, rxBytes: c.rxBytes,
                                                rxDropped: c.rxDropped, rxErrors: c.rxErrors, txPackets: c.txPackets,
                                                txBytes: c.txBytes, txDropped: c.txDropped, txErrors: c.txErrors)
        }
        return StackStatistics(duration: duration, stages: stages, drops: drops,
                               snmp: StackStatistics.SNMP(ip: ip, icmp: icmp, udp: udp),
                               routeCache: StackStatistics.RouteCacheCounters(hits: cache.hits, misses: cache.misses,
                                                                               evictions: cache.evictions),
                               links: links, pools: poolCounters(workers: workers))
    }

    /// The pools of `workers` (one per NUMA node, as `PacketPool.perNode` makes them) and the
    /// stack's 64 KiB pool once it exists. In use: allocated skbs (in flight, queued, held by
    /// a socket or a neighbour); a worker's cache of free buffers counts as free. Exact when
    /// the workers are idle.
    public func poolCounters(workers: [Worker]) -> [StackStatistics.PoolCounters] {
        var seen = Set<ObjectIdentifier>()
        var pools: [PacketPool] = []
        for pool in workers.map(\.pool) + [ipv4.largePool.withLock { $0 }].compactMap({ $0 })
        where seen.insert(ObjectIdentifier(pool)).inserted {
            pools.append(pool)
        }
        return pools.map { pool in
            let free = pool.freeCount
            let name = pool === ipv4.largePool.withLock({ $0 }) ? "large" : "node\(pool.node)"
            return StackStatistics.PoolCounters(name: name, buffers: pool.capacity, bufferSize: pool.bufferSize,
                                                inUse: pool.capacity - free, free: free)
        }
    }
}
