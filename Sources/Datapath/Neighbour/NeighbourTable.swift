import DatapathCore
import DatapathWire
import Logging
import Synchronization

/// The IPv4 neighbour table (Linux: `arp_tbl`, a `struct neigh_table`): entries keyed by
/// (address, device), the NUD state machine with Linux's timers, bounded pending queues while
/// resolving, and each entry's cached Ethernet header.
///
/// Workers output through an entry without the lock while it is REACHABLE, PERMANENT or NOARP
/// (`Neighbour.writeCachedHeaders`); everything else — creation, `neighUpdate`, the slow
/// output path, timers — takes the table's lock, as Linux takes `neigh->lock`.
/// `runTimers` is driven by one worker (the stack schedules it every 100 ms on worker 0).
public final class NeighbourTable: @unchecked Sendable {
    public let parameters: NeighbourParameters
    public let clock: any DatapathClock
    public let core: NetCore
    public let addresses: InterfaceAddresses
    let state: Lock<TableState>
    /// Every entry by slot, for workers holding handles; changed under `state`'s lock.
    let slab: NeighbourSlab
    /// Per worker, the batch the packets that waited for resolution leave in.
    let flushBatches: ScratchBatches
    public let resolveStage = StageID.named("neigh-resolve-output")
    /// Called (under the table's lock) when entries leave the table, so that route caches
    /// holding them let go (the stack invalidates them). Set before workers start.
    package var onRemoval: (@Sendable () -> Void)?
    /// Where entries that go FAILED are reported (at most one line a second, with a count of
    /// the others). Set before workers start.
    public var logger = Logger(label: "datapath.neighbour", factory: { _ in SwiftLogNoOpLogHandler() })

    struct Key: Hashable {
        let address: UInt32
        let ifindex: Int
    }

    struct TableState {
        var entries: [Key: Neighbour] = [:]
        var reachableTime: UInt64
        var nextRandomization: UInt64
        var random: SplitMix64
        var statistics = NeighbourStatistics()
        /// When a FAILED entry was last reported, and how many went unreported since.
        var lastFailureReport: UInt64 = 0
        var unreportedFailures = 0
        /// Removed entries whose pending packets a worker still has to free.
        var dead: [Neighbour] = []
        /// Entries resolved without a worker (the control plane's `addStatic`) while packets
        /// waited: a worker still has to send them.
        var resolved: [Neighbour] = []
    }

    /// `seed` fixes the random reachable time (tests); by default it is random per table.
    /// `workers` workers may output through it.
    public init(core: NetCore, addresses: InterfaceAddresses, clock: any DatapathClock,
                parameters: NeighbourParameters = .linuxDefaults, seed: UInt64? = nil, workers: Int = 1) {
        flushBatches = ScratchBatches(workers: max(1, workers))
        self.core = core
        self.addresses = addresses
        self.clock = clock
        self.parameters = parameters
        // Twice the table: slots freed by garbage collection wait out a grace period.
        self.slab = NeighbourSlab(capacity: 2 * max(1, parameters.maximumEntries) + 64, quiescence: core.quiescence)
        var random = SplitMix64(seed: seed ?? UInt64.random(in: 0 ... .max))
        let reachable = NeighbourTable.randomReachableTime(parameters.baseReachableTime.nanoseconds, &random)
        self.state = Lock(TableState(reachableTime: reachable, nextRandomization: clock.now() &+ 300_000_000_000,
                                      random: random))
    }

    /// Uniform in [base/2, 3·base/2) (Linux: `neigh_rand_reach_time`, RFC 4861 §6.3.2).
    static func randomReachableTime(_ base: UInt64, _ random: inout SplitMix64) -> UInt64 {
        base == 0 ? 0 : base / 2 &+ random.next() % base
    }

    /// The current reachable time (re-drawn every 300 s, as Linux does).
    public var reachableTime: Duration { .nanoseconds(state.withLock { $0.reachableTime }) }

    public var statistics: NeighbourStatistics { state.withLock { $0.statistics } }

    // MARK: lookup and creation

    /// The entry `handle` refers to, nil once it has left the table. Lock-free, for workers
    /// (Linux reads `struct neighbour *` under RCU; here the slab's grace period does that).
    @inline(__always)
    package func entry(_ handle: NeighbourHandle) -> Neighbour? { slab.entry(handle) }

    /// The entry for `address` on `ifindex`, if any (Linux: `neigh_lookup`).
    public func lookup(_ address: IPv4Address, ifindex: Int) -> Neighbour? {
        state.withLock { $0.entries[Key(address: address.hostOrder, ifindex: ifindex)] }
    }

    /// The entry for `address` on `device`, created in state NONE if missing (Linux:
    /// `__neigh_lookup_errno` → `neigh_create`). Nil when the table is full even after
    /// collecting FAILED entries.
    package func lookupOrCreate(_ address: IPv4Address, device: any NetDevice) -> Neighbour? {
        state.withLock { table in create(address, device: device, in: &table) }
    }

    func create(_ address: IPv4Address, device: any NetDevice, in table: inout TableState) -> Neighbour? {
        let key = Key(address: address.hostOrder, ifindex: device.ifindex)
        if let existing = table.entries[key] { return existing }
        if table.entries.count >= parameters.maximumEntries {
            collectGarbage(in: &table, now: clock.now(), force: true)
            guard table.entries.count < parameters.maximumEntries else {
                table.statistics.tableFulls += 1
                return nil
            }
        }
        guard let neighbour = slab.allocate({ Neighbour(address: address, device: device, handle: $0) }) else {
            table.statistics.tableFulls += 1
            return nil
        }
        table.entries[key] = neighbour
        table.statistics.allocations += 1
        return neighbour
    }

    /// The entry for a broadcast or multicast next hop (Linux: `arp_constructor` with
    /// `arp_mc_map`): NOARP with the mapped link address, never resolved, never aged.
    public func addNoARP(_ address: IPv4Address, linkAddress: MACAddress, device: any NetDevice) -> Neighbour? {
        state.withLock { table -> Neighbour? in
            guard let neighbour = create(address, device: device, in: &table) else { return nil }
            if neighbour.state != .noARP || neighbour.linkAddress != linkAddress {
                neighUpdate(neighbour, linkAddress: linkAddress, to: .noARP, flags: [.override, .admin],
                            now: clock.now(), worker: nil, table: &table)
            }
            return neighbour
        }
    }

    /// Adds or replaces a static entry (Linux: `ip neigh replace … nud permanent`, which is
    /// what `neigh add` means here): PERMANENT, never changed by ARP.
    @discardableResult
    public func addStatic(_ address: IPv4Address, linkAddress: MACAddress, device: any NetDevice) -> Neighbour? {
        state.withLock { table -> Neighbour? in
            guard let neighbour = create(address, device: device, in: &table) else { return nil }
            neighUpdate(neighbour, linkAddress: linkAddress, to: .permanent, flags: [.override, .admin],
                        now: clock.now(), worker: nil, table: &table)
            return neighbour
        }
    }

    /// Removes an entry (Linux: `ip neigh del`); its pending packets are dropped by the next
    /// `runTimers` worker. Holders of the entry see it dead and drop what they send through it.
    @discardableResult
    public func remove(_ address: IPv4Address, ifindex: Int) -> Bool {
        state.withLock { table in
            guard let neighbour = table.entries.removeValue(forKey: Key(address: address.hostOrder, ifindex: ifindex))
            else { return false }
            neighbour.isDead = true
            neighbour.deadline = 0
            neighbour.publish(.none)
            slab.release(neighbour)
            table.statistics.destroys += 1
            table.dead.append(neighbour)
            onRemoval?()
            return true
        }
    }

    /// Rebuilds the cached headers of every entry on `device` after its MAC changed (Linux:
    /// `neigh_changeaddr` on `NETDEV_CHANGEADDR`; a bond takes its first slave's address).
    package func deviceAddressChanged(_ device: any NetDevice) {
        state.withLock { table in
            for neighbour in table.entries.values where neighbour.ifindex == device.ifindex {
                if let address = neighbour.linkAddress { neighbour.publishHeader(destination: address) }
            }
        }
    }

    /// Learns the sender of a request addressed to us (Linux: `neigh_event_ns`): creates its
    /// entry if needed and says STALE with its address, in one pass under the lock.
    package func learnFromRequest(_ address: IPv4Address, linkAddress: MACAddress, device: any NetDevice,
                                 worker: Worker) {
        state.withLock { table in
            guard let neighbour = create(address, device: device, in: &table) else { return }
            _ = neighUpdate(neighbour, linkAddress: linkAddress, to: .stale, flags: [.weakOverride, .override],
                        now: clock.now(), worker: worker, table: &table)
        }
    }

    // MARK: show

    /// Every entry as `ip neigh` lists it, sorted by device then address.
    public func snapshot() -> [NeighbourSnapshot] {
        state.withLock { table in
            table.entries.values.map {
                NeighbourSnapshot(address: $0.address, device: $0.device.name, ifindex: $0.ifindex,
                                  linkAddress: $0.linkAddress, state: $0.state, pending: $0.pending.count)
            }
        }.sorted { ($0.ifindex, $0.address) < ($1.ifindex, $1.address) }
    }

    /// The state of one entry, if it exists.
    public func state(of address: IPv4Address, ifindex: Int) -> NeighbourState? {
        state.withLock { $0.entries[Key(address: address.hostOrder, ifindex: ifindex)]?.state }
    }
}

/// Counters of the table (Linux: `ip -s ntable show`'s `allocs destroys res_failed …`).
public struct NeighbourStatistics: Sendable, Equatable {
    package var allocations: UInt64 = 0
    public var destroys: UInt64 = 0
    public var resolutionsFailed: UInt64 = 0
    public var probesSent: UInt64 = 0
    public var tableFulls: UInt64 = 0
    package var garbageCollected: UInt64 = 0
}

/// One entry as `ip neigh` shows it.
public struct NeighbourSnapshot: Sendable, Equatable, CustomStringConvertible {
    public let address: IPv4Address
    public let device: String
    public let ifindex: Int
    public let linkAddress: MACAddress?
    public let state: NeighbourState
    /// Packets waiting in the pending queue.
    public let pending: Int

    /// `198.18.0.2 dev eth0 lladdr 02:00:00:00:00:02 REACHABLE`, as `ip neigh` prints it.
    public var description: String {
        var line = "\(address) dev \(device)"
        if let linkAddress, state.intersects(.valid) { line += " lladdr \(linkAddress)" }
        return line + " \(state)"
    }
}
