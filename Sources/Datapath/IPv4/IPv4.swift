import DatapathCore
import DatapathWire
import Synchronization

/// The IPv4 protocol of one stack (Linux: `ip_packet_type` and the per-namespace IPv4 state):
/// the receive pipeline registered for EtherType 0x0800, its MIB counters, stages, sysctls and
/// per-worker state (route cache, split batches).
///
/// One received batch runs, as DESIGN.md §1 draws it: `ipRcv` → `NF_INET_PRE_ROUTING` →
/// `ipRcvFinish` (route input, splitting the batch by `dst.input`) → `ipForward` →
/// `NF_INET_FORWARD` → `ipOutput` → `NF_INET_POST_ROUTING` → `ipFinishOutput` →
/// `ipFinishOutput2` → neighbour → `devQueueXmit`; and `ipLocalDeliver` → `NF_INET_LOCAL_IN`
/// → the protocol handlers. What the stack sends itself (ICMP) leaves through `ipLocalOut`.
@safe public final class IPv4: PacketTypeHandler, @unchecked Sendable {
    public let core: NetCore
    public let fib: FIB
    public let neighbours: NeighbourTable
    public let addresses: InterfaceAddresses
    public let netfilter: Netfilter
    public let statistics: IPStatistics
    /// Path MTUs learned from ICMP per destination (Linux: the next hops' `fib_nh_exception`s).
    package let pmtuExceptions = PMTUExceptions()
    public private(set) var icmp: ICMP!
    let perWorker: WorkerLocal<IPv4WorkerState>

    /// The sysctls, published as a snapshot: a worker takes them with the FIB snapshot, once per
    /// route-cache epoch, so reading one costs nothing per packet.
    let sysctls: Snapshot<IPv4Settings>

    /// The IPv4 sysctls in force. Setting them is safe while workers run: they see the new
    /// values from their next batch, with their route caches emptied (Linux flushes the route
    /// cache when `ip_forward` changes, `inet_forward_change`).
    public var settings: IPv4Settings {
        get { sysctls.value }
        set {
            sysctls.publish(newValue)
            fib.invalidateCaches()
        }
    }
    /// Forward packets not addressed to us (Linux: `net.ipv4.ip_forward`).
    public var forwarding: Bool {
        get { settings.forwarding }
        set { settings.forwarding = newValue }
    }
    /// TTL of packets the stack originates (Linux: `net.ipv4.ip_default_ttl`).
    public var defaultTTL: UInt8 {
        get { settings.defaultTTL }
        set { settings.defaultTTL = newValue }
    }
    /// Whether frames that only need forwarding take the fast path (`receive(_:ifindex:macWord:worker:)`).
    public var fastPath: Bool {
        get { settings.fastPath }
        set { settings.fastPath = newValue }
    }
    public let reassembly: ReassemblyParameters
    /// 64 KiB buffers for reassembled datagrams and long sends, made on first need.
    let largePool = Lock<PacketPool?>(nil)

    /// The 64 KiB pool (made on first use: 32 buffers per worker).
    func sharedLargePool() -> PacketPool {
        largePool.withLock { pool -> PacketPool in
            if let pool { return pool }
            let made = try! PacketPool(capacity: 32 * perWorker.count, bufferSize: 65536 + 256)
            pool = made
            return made
        }
    }

    public let rcvStage = StageID.named("ip-rcv")
    public let routeStage = StageID.named("ip-route-input")
    public let forwardStage = StageID.named("ip-forward")
    public let outputStage = StageID.named("ip-output")
    public let finishOutputStage = StageID.named("ip-finish-output2")
    public let localDeliverStage = StageID.named("ip-local-deliver")
    public let fastForwardStage = StageID.named("ip-forward-fast")
    public let fastLocalStage = StageID.named("ip-local-fast")

    /// Protocol handlers by IP protocol number (Linux: `inet_protos`); slot k of
    /// `protocolIndex` is handler k − 1. This and the three below are registries, fixed before
    /// workers start, so reads on the worker's path skip the dynamic exclusivity check.
    @exclusivity(unchecked) var protocolHandlers: [any IPProtocolHandler] = []
    /// The raw sockets `ip_local_deliver_finish` offers each packet first (set by the stack
    /// before workers start).
    @exclusivity(unchecked) var raw: RawIP?
    /// Multicast group membership (set by the stack before workers start).
    @exclusivity(unchecked) var igmp: IGMP?
    /// The loopback device, where output to our own addresses goes (set by the stack).
    @exclusivity(unchecked) var loopbackIfindex = 0
    /// What multipath routes hash flows with (keyed at random per stack).
    let multipathHasher = FlowHasher()
    let protocolIndex: UnsafeMutablePointer<UInt8>
    @inlinable static var maximumProtocolHandlers: Int { 8 }

    public init(core: NetCore, fib: FIB, neighbours: NeighbourTable, addresses: InterfaceAddresses,
                netfilter: Netfilter, workers: Int, clock: any DatapathClock = MonotonicClock(),
                icmpRateLimits: ICMPRateLimitParameters = .linuxDefaults, routeCacheCapacity: Int = 4096,
                reassembly: ReassemblyParameters = .linuxDefaults) {
        self.core = core
        self.fib = fib
        self.neighbours = neighbours
        self.addresses = addresses
        self.netfilter = netfilter
        statistics = IPStatistics(workers: workers)
        self.reassembly = reassembly
        sysctls = Snapshot(IPv4Settings(), workers: workers)
        unsafe protocolIndex = .allocate(capacity: 256)
        unsafe protocolIndex.initialize(repeating: 0, count: 256)
        perWorker = WorkerLocal(workers: max(1, workers)) { _ in
            IPv4WorkerState(cacheCapacity: routeCacheCapacity, fib: fib, epoch: fib.epoch,
                            reassembly: reassembly)
        }
        icmp = ICMP(ipv4: self, workers: workers, rateLimits: icmpRateLimits, clock: clock)
    }

    deinit {
        unsafe protocolIndex.deallocate()
    }

    /// Registers for EtherType IPv4 on the core (Linux: `dev_add_pack(&ip_packet_type)`), as
    /// its ingress fast path, and ICMP as protocol 1 (Linux: `inet_add_protocol(&icmp_protocol,
    /// IPPROTO_ICMP)`).
    public func register() {
        core.addPacketType(.ipv4, self)
        core.setIngressFastPath(self)
        addProtocol(.icmp, icmp)
    }

    /// Adds a transport protocol handler (Linux: `inet_add_protocol`); control plane only.
    public func addProtocol(_ number: IPProtocol, _ handler: any IPProtocolHandler) {
        precondition(!core.registriesAreFrozen, "adding an IP protocol handler after workers started")
        if let existing = unsafe protocolHandlers.firstIndex(where: { $0 === handler }) {
            unsafe protocolIndex[Int(number.rawValue)] = UInt8(existing + 1)
            return
        }
        unsafe precondition(protocolHandlers.count < IPv4.maximumProtocolHandlers, "too many IP protocol handlers")
        unsafe protocolHandlers.append(handler)
        unsafe protocolIndex[Int(number.rawValue)] = unsafe UInt8(protocolHandlers.count)
    }

    /// The handler registered for `number`, if any.
    func protocolHandler(_ number: IPProtocol) -> (any IPProtocolHandler)? {
        let slot = unsafe Int(protocolIndex[Int(number.rawValue)])
        return unsafe slot == 0 ? nil : protocolHandlers[slot - 1]
    }

    /// The route cache of worker `index` (counters, size, on/off).
    public func routeCache(worker index: Int) -> RouteCache { perWorker[index].routeCache }

    /// Turns every worker's route cache on or off (control plane, before workers start).
    public func setRouteCacheEnabled(_ enabled: Bool) {
        for state in perWorker { state.routeCache.isEnabled = enabled }
    }

    /// Route cache hits, misses and evictions summed over workers.
    public var routeCacheCounters: (hits: UInt64, misses: UInt64, evictions: UInt64) {
        perWorker.reduce((0, 0, 0)) { ($0.0 &+ $1.routeCache.hits, $0.1 &+ $1.routeCache.misses,
                                       $0.2 &+ $1.routeCache.evictions) }
    }

    @inline(__always)
    func state(_ worker: Worker) -> IPv4WorkerState { perWorker[worker] }

    /// A batch of IPv4 packets from `netif_receive_skb`, all from one device (Linux:
    /// `ip_rcv` → `NF_HOOK(PRE_ROUTING)` → `ip_rcv_finish`, and on from there).
    public func receive(_ batch: inout PacketBatch, worker: Worker) {
        ipRcv(&batch, worker: worker)
        netfilter.run(.preRouting, &batch, worker: worker)
        ipRcvFinish(&batch, worker: worker)
    }
}

/// A transport protocol's receive function (Linux: `struct net_protocol`'s `handler`:
/// `icmp_rcv`, `udp_rcv`, `tcp_v4_rcv`). Gets a batch of one protocol's packets, `data` at the
/// transport header, the network header still set, `dst` filled; owns them from then on.
public protocol IPProtocolHandler: AnyObject, Sendable {
    func receive(_ batch: inout PacketBatch, worker: Worker)

    /// An ICMP error about a packet of this protocol (Linux: `struct net_protocol`'s
    /// `err_handler`, called from `icmp_unreach` → `icmp_socket_deliver`): `quoted` is the
    /// offending packet's IPv4 header as the error quotes it, with at least 8 bytes after it
    /// and `quotedLength` bytes in all; `offender` sent the error. The default ignores it.
    func icmpError(type: ICMPType, code: ICMPCode, info: UInt32, quoted: IPv4Header, quotedLength: Int,
                   offender: IPv4Address, worker: Worker)
}

extension IPProtocolHandler {
    public func icmpError(type: ICMPType, code: ICMPCode, info: UInt32, quoted: IPv4Header, quotedLength: Int,
                          offender: IPv4Address, worker: Worker) {}
}

/// One worker's IPv4 state: its route cache with the FIB snapshot and epoch it is valid for,
/// the batches stages split into, and the IP identification counter.
///
/// Only its worker touches it. The fields read on every batch are `@exclusivity(unchecked)`:
/// a class's `var` otherwise pays a dynamic exclusivity check on each access (a call into the
/// runtime and its access-set bookkeeping, ~80 instructions), which no other thread could
/// ever fail here.
@safe final class IPv4WorkerState: @unchecked Sendable {
    let routeCache: RouteCache
    /// The worker's dst entries: statics, one per FIB route in use, and owned ones.
    let dsts: DstTable
    @exclusivity(unchecked) var snapshot: FIBSnapshot
    @exclusivity(unchecked) var epoch: UInt64
    /// The sysctls as of `epoch` (publishing them moves the epoch on).
    @exclusivity(unchecked) var settings = IPv4Settings()
    /// True while `ipRcvFinish` routes a batch against `snapshot`: a route lookup made meanwhile
    /// (an ICMP error's `routeOutput`) must not adopt a newer snapshot under it.
    @exclusivity(unchecked) var routing = false
    /// Per route slot of `snapshot`, its decision as far as it does not depend on the
    /// destination (Linux: the dst cached on the next hop, `nh_rth_input`), made on first use
    /// and stamped with the generation it was made at (`routeStamps`): one whose slot was reused
    /// since is made again; `.none` = not made yet.
    @exclusivity(unchecked) var routeTable: UnsafeMutablePointer<RouteResult>
    @exclusivity(unchecked) var routeStamps: UnsafeMutablePointer<UInt32>
    @exclusivity(unchecked) var routeTableCount: Int
    /// The FIB's published word adopted (`FIB.published`; a new one moves only `snapshot`).
    @exclusivity(unchecked) var published: UInt64
    /// The FIB's per-slot change marks (`RouteSlots.changed`).
    let changed: UnsafeMutablePointer<UInt32>
    /// The generation each slot's route was put in at (`RouteSlots.allocated`).
    let allocated: UnsafeMutablePointer<UInt32>
    /// `RouteCache.validity` of `epoch` and `generation`: what the route cache checks hits
    /// against.
    @exclusivity(unchecked) var cacheCurrent: UInt64
    /// Per multipath route slot (by index), each next hop's decision, made on first use.
    var multipathEntries: [Int: [RouteResult]] = [:]
    var forward = PacketBatch()
    var local = PacketBatch()
    /// The frames the fast path found routed here, in batch order (`fastLocal`, `takeFastLocal`).
    @exclusivity(unchecked) var fastLocal = PacketBatch()
    /// Where in the frames `fastRewrite` leaves the first IPv4 frame to us that it could not
    /// route sits (the batch's count when none): `takeFastLocal` leaves what follows.
    @exclusivity(unchecked) var fastClosedAt = 0
    /// Packets the stack originates during a batch (ICMP errors and replies), sent at its end.
    var output = PacketBatch()
    /// Fragments and the packets around them, on their way to `ipFinishOutput2`.
    var fragments = PacketBatch()
    /// The segments of one GSO packet segmented in software (`ipFinishOutputGSO`).
    var gsoSegments = PacketBatch()
    /// Per protocol handler slot, the packets `ipLocalDeliverFinish` hands it.
    let protocolBatches: UnsafeMutablePointer<PacketBatch>
    let neighbourBatches = NeighbourBatches()
    /// The fast path's per-neighbour output batches (`receive(_:ifindex:macWord:worker:)`).
    let fastGroups = NeighbourBatches()
    /// The fast path's neighbour per frame of the batch (0: left to the staged path).
    let fastHops = UnsafeMutablePointer<UInt>.allocate(capacity: PacketBatch.maximumCount)
    /// `isLocalAddress`'s last answer: valid << 63 | local << 62 | address (0: none; cleared
    /// with each new FIB snapshot).
    let sourceMemo: UnsafeMutablePointer<UInt64> = {
        let memo = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        unsafe memo.initialize(to: 0)
        return unsafe memo
    }()
    /// Per first octet, 1 when an address starting with it needs a closer look before the FIB
    /// (0, 127, 224–255: martians, multicast, the limited broadcast), else 0 — one byte load
    /// per address on every route lookup (`routeDecision`).
    let specialOctets: UnsafeMutablePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        for octet in 0..<256 { unsafe (table + octet).initialize(to: octet == 0 || octet == 127 || octet >= 224 ? 1 : 0) }
        return unsafe table
    }()
    /// The fast path's FORWARD filter rule per frame: index + 1 | length << 32 (0: none).
    let fastRules = UnsafeMutablePointer<UInt64>.allocate(capacity: PacketBatch.maximumCount)
    var identification: UInt16
    /// The multicast groups joined, `ifindex << 32 | group`, as of this worker's epoch (a
    /// join or leave moves the epoch on).
    var multicastGroups = Set<UInt64>()
    let fragmentQueues: FragmentQueues
    var largeCacheStorage: PoolCache?

    init(cacheCapacity: Int, fib: FIB, epoch: UInt64, reassembly: ReassemblyParameters) {
        unsafe published = fib.published
        let snapshot = unsafe fib.published(published)
        fragmentQueues = FragmentQueues(parameters: reassembly)
        routeCache = RouteCache(capacity: cacheCapacity)
        dsts = DstTable(capacity: 256)
        unsafe self.snapshot = snapshot
        unsafe self.epoch = epoch
        unsafe changed = unsafe snapshot.routes.changed
        unsafe allocated = unsafe snapshot.routes.allocated
        unsafe cacheCurrent = RouteCache.validity(epoch: epoch, generation: snapshot.stamp)
        unsafe routeTableCount = max(64, snapshot.routes.count)
        unsafe routeTable = unsafe .allocate(capacity: routeTableCount)
        unsafe routeTable.initialize(repeating: RouteResult(input: .none), count: routeTableCount)
        unsafe routeStamps = unsafe .allocate(capacity: routeTableCount)
        unsafe routeStamps.initialize(repeating: 0, count: routeTableCount)
        identification = UInt16.random(in: 0 ... .max)
        unsafe protocolBatches = .allocate(capacity: IPv4.maximumProtocolHandlers)
        for i in 0..<IPv4.maximumProtocolHandlers { unsafe (protocolBatches + i).initialize(to: PacketBatch()) }
    }

    deinit {
        unsafe routeTable.deallocate()
        unsafe routeStamps.deallocate()
        unsafe fastHops.deallocate()
        unsafe fastRules.deallocate()
        unsafe sourceMemo.deallocate()
        unsafe specialOctets.deallocate()
        unsafe protocolBatches.deinitialize(count: IPv4.maximumProtocolHandlers)
        unsafe protocolBatches.deallocate()
    }

    /// Takes the FIB's current snapshot when its generation moved on, and the sysctls too when
    /// the epoch did (once per batch).
    @inline(__always)
    func refresh(_ ipv4: IPv4, worker: Worker) {
        // The generation first: a publication stores an epoch bump before its generation, so
        // a new generation seen here comes with its epoch.
        let word = ipv4.fib.published
        let current = ipv4.fib.epoch
        if unsafe current != epoch || word != published {
            adopt(ipv4, published: word, epoch: current, worker: worker)
        }
    }

    func adopt(_ ipv4: IPv4, published word: UInt64, epoch current: UInt64, worker: Worker) {
        if unsafe current != epoch {
            // Everything made per route goes with the epoch (readable until the batch ends).
            for i in unsafe 0..<routeTableCount where unsafe routeTable[i].input == .forward && !routeTable[i].flags.contains(.multipath) {
                unsafe dsts.release(DstIndex(rawValue: routeTable[i].dst))
            }
            for entries in multipathEntries.values {
                for entry in entries where entry.input == .forward { dsts.release(DstIndex(rawValue: entry.dst)) }
            }
            multipathEntries.removeAll(keepingCapacity: true)
            unsafe routeTable.update(repeating: RouteResult(input: .none), count: routeTableCount)
            unsafe epoch = current
            unsafe settings = ipv4.sysctls.read(worker)
            multicastGroups = unsafe ipv4.igmp?.joinedGroups ?? []
            routeCache.forgetSlots()
        }
        if unsafe word != published {
            unsafe snapshot = ipv4.fib.published(word)
            unsafe published = word
        }
        // The cache's generation moves on only when the publications since marked a slot its
        // entries came from (or the epoch moved): churn of other routes costs its hits no
        // re-check. Entries made meanwhile carry the older generation, which can only make
        // a later re-check drop one too many.
        let cacheStamp = unsafe UInt32(truncatingIfNeeded: cacheCurrent)
        if unsafe cacheCurrent >> 32 != epoch & 0xFFFF_FFFF
            || routeCache.changedAny(changed, since: cacheStamp, adopted: snapshot.stamp) {
            unsafe cacheCurrent = unsafe RouteCache.validity(epoch: epoch, generation: snapshot.stamp)
        }
        // Slots may have been added: the per-slot table covers them all.
        let needed = unsafe snapshot.routes.count
        if unsafe needed > routeTableCount {
            var grown = unsafe routeTableCount
            while grown < needed { grown *= 2 }
            let table = UnsafeMutablePointer<RouteResult>.allocate(capacity: grown)
            unsafe table.moveInitialize(from: routeTable, count: routeTableCount)
            unsafe (table + routeTableCount).initialize(repeating: RouteResult(input: .none), count: grown - routeTableCount)
            unsafe routeTable.deallocate()
            unsafe routeTable = unsafe table
            let stamps = UnsafeMutablePointer<UInt32>.allocate(capacity: grown)
            unsafe stamps.moveInitialize(from: routeStamps, count: routeTableCount)
            unsafe (stamps + routeTableCount).initialize(repeating: 0, count: grown - routeTableCount)
            unsafe routeStamps.deallocate()
            unsafe routeStamps = unsafe stamps
            unsafe routeTableCount = grown
        }
        unsafe sourceMemo.pointee = 0
    }

    /// Whether `address` is one of our own in `snapshot` (the current one), remembering the
    /// last address asked about: on a route cache miss `fib_validate_source` asks it of every
    /// packet's source, and a flood of new destinations usually comes from few sources.
    @inline(__always)
    func isLocalAddress(_ address: UInt32, in snapshot: FIBSnapshot) -> Bool {
        let memo = unsafe sourceMemo.pointee
        let tagged = 1 << 63 | UInt64(address)
        if memo == tagged { return false }          // the usual answer: a source not ours
        if memo == tagged | 1 << 62 { return true }
        let local = snapshot.routes[snapshot.lookupIndex(address)].type == .local
        unsafe sourceMemo.pointee = 1 << 63 | (local ? 1 << 62 : 0) | UInt64(address)
        return local
    }

    /// This worker's cache of the stack's 64 KiB pool (made on first use).
    func largeCache(of ipv4: IPv4) -> PoolCache {
        if let cache = largeCacheStorage { return cache }
        let cache = ipv4.sharedLargePool().makeCache(capacity: 8, batch: 4)
        largeCacheStorage = cache
        return cache
    }

    /// The next IP identification (Linux: `ip_select_ident`, here one counter per worker).
    @inline(__always)
    func nextIdentification() -> UInt16 {
        identification &+= 1
        return identification
    }
}

/// The IPv4 sysctls (Linux: `/proc/sys/net/ipv4/`).
public struct IPv4Settings: Sendable, Equatable {
    /// Forward packets not addressed to us (`ip_forward`; on here, as the library exists to
    /// forward).
    public var forwarding = true
    /// TTL of packets the stack originates (`ip_default_ttl`).
    public var defaultTTL: UInt8 = 64
    /// Whether frames that only need forwarding take the fast path (`receive(_:ifindex:macWord:worker:)`); on by
    /// default. Off, every frame takes the staged path (for comparisons and tests). Not a
    /// Linux sysctl.
    public var fastPath = true
    /// Whether the fast path also hands frames it finds routed to this host straight to local
    /// delivery (`ipLocalDeliver`), with the route and header checks it already made, instead
    /// of passing them on for `ip_rcv` and `ip_rcv_finish` to make again; on by default. Linux
    /// saves the same second lookup for local traffic with `net.ipv4.ip_early_demux`. Off,
    /// they take the staged path (for comparisons and tests).
    public var fastLocalDelivery = true
    /// What a multipath route hashes to choose a next hop (Linux:
    /// `net.ipv4.fib_multipath_hash_policy`): 0, the source and destination addresses; 1, also
    /// the protocol and ports of TCP and UDP (routes chosen that way are not cached).
    public var multipathHashPolicy: UInt8 = 0

    public init() {}
}

extension IPv4 {
    /// An empty skb able to hold `bytes`: from the worker's pool when it fits, else from the
    /// stack's pool of 64 KiB buffers — for what outgrows a pool buffer: reassembled
    /// datagrams, a jumbo datagram built whole, a raw socket's copy or IP_HDRINCL packet.
    func allocateLarge(bytes: Int, worker: Worker) -> SKB? {
        if let skb = worker.cache.allocate() {
            if skb.tailroom >= bytes { return skb }
            worker.cache.free(skb)
        }
        return state(worker).largeCache(of: self).allocate()
    }
}
