import DatapathCore
import DatapathWire
import Synchronization

/// Multicast group membership and IGMP (Linux: `net/ipv4/igmp.c` — `ip_mc_inc_group`,
/// `ip_mc_dec_group`, `igmp_rcv`, `igmpv3_send_report`). Sockets join groups on an interface;
/// the first membership of a group on an interface lets its frames in (`dev_mc_add`: the
/// 01:00:5e MAC on the device), makes route input deliver it (`ip_check_mc_rcu`) and sends an
/// IGMPv3 report so a snooping switch forwards the group; the last one leaves and reports
/// that. A general query (or one for a group we are in) is answered with the current state.
/// Where an IGMPv1 or IGMPv2 querier is heard, the interface falls back to that version
/// (RFC 3376 §7.2.1, Linux's `mr_v1_seen`/`mr_v2_seen`) for the Older Version Querier
/// Present Timeout: v2 reports to each group and leaves to 224.0.0.2, or v1 reports and no
/// leaves. Reports go out on a worker, through a `Tasklet`, as the stack's other packets do.
public final class IGMP: IPProtocolHandler, @unchecked Sendable {
    /// 224.0.0.1, every host (general queries), joined on every interface.
    static let allHosts: UInt32 = 0xE000_0001
    /// 224.0.0.22, where IGMPv3 reports go.
    static let allReports: UInt32 = 0xE000_0016
    /// 224.0.0.2, where IGMPv2 leaves go.
    static let allRouters: UInt32 = 0xE000_0002
    /// The Router Alert option (RFC 2113: type 148, length 4, value 0) every IGMP message
    /// carries, so a router examines it (RFC 2236 §2, RFC 3376 §4).
    static let routerAlert: [UInt8] = [IPv4OptionType.routerAlert.rawValue, 4, 0, 0]
    /// RFC 3376 §8.12's Older Version Querier Present Timeout with the defaults (robustness 2
    /// × query interval 125 s + query response interval 10 s).
    static let olderQuerierTimeout: UInt64 = 260_000_000_000

    /// What a pending report says.
    enum Report {
        /// The group was joined (v3 CHANGE_TO_EXCLUDE {}, a v1/v2 report).
        case joined
        /// The group was left (v3 CHANGE_TO_INCLUDE {}, a v2 leave).
        case left
        /// A query's answer: the current state (v3 MODE_IS_EXCLUDE {}, v1/v2 reports) of one
        /// group, or of every group of the interface when the group is nil.
        case current
    }

    unowned let ipv4: IPv4
    let core: NetCore
    let fib: FIB

    struct State {
        /// `ifindex << 32 | group` → how many memberships hold it.
        var memberships: [UInt64: Int] = [:]
        /// Reports to send: (ifindex, group, joined) — changes; (ifindex, nil, _) — a
        /// current-state report of every group of the interface (a query's answer).
        var pending: [(Int, IPv4Address?, Report)] = []
        /// ifindex → the oldest querier version heard (1 or 2) and until when it counts.
        var olderQuerier: [Int: (version: UInt8, until: UInt64)] = [:]
        var tasklet: Tasklet?
        var reportsSent = 0
        var queriesReceived = 0
    }
    let state = Lock(State())

    init(ipv4: IPv4, core: NetCore, fib: FIB) {
        self.ipv4 = ipv4
        self.core = core
        self.fib = fib
    }

    /// The groups joined, `ifindex << 32 | group` (route input takes a copy per epoch).
    var joinedGroups: Set<UInt64> { state.withLock { Set($0.memberships.keys) } }

    /// Whether `group` is joined on device `ifindex`.
    public func isMember(_ group: IPv4Address, ifindex: Int) -> Bool {
        state.withLock { $0.memberships[UInt64(ifindex) << 32 | UInt64(group.hostOrder)] != nil }
    }

    /// The IGMP version the interface reports with now: 3, or 1 or 2 while an older querier
    /// was heard within the timeout.
    public func version(ifindex: Int, now: UInt64) -> UInt8 {
        state.withLock { state in
            guard let older = state.olderQuerier[ifindex], now < older.until else { return 3 }
            return older.version
        }
    }

    /// IGMP reports sent and queries received so far.
    public var counts: (reportsSent: Int, queriesReceived: Int) {
        state.withLock { ($0.reportsSent, $0.queriesReceived) }
    }

    /// Sends reports from `worker` from now on (the stack's first worker, at start).
    func attach(_ worker: Worker) {
        let tasklet = Tasklet(on: worker) { [weak self] worker in self?.sendPending(worker) }
        let pending = state.withLock { state -> Bool in
            state.tasklet = tasklet
            return !state.pending.isEmpty
        }
        if pending { tasklet.schedule() }
    }

    /// The device a membership without one named goes on (Linux: `ip_mc_find_dev`, by the
    /// route to the group).
    func device(for group: IPv4Address, ifindex: Int) throws(SocketError) -> Int {
        guard group.isMulticast else { throw .notMulticast(group) }
        let index = ifindex != 0 ? ifindex : fib.lookup(group)?.ifindex ?? 0
        guard index != 0, core.devices[index] != nil else { throw .noRoute(group) }
        return index
    }

    /// One more membership of `group` on device `ifindex` (0: the device the route to the group
    /// names) (Linux: `ip_mc_inc_group`). Returns the device. Throws `notMulticast`, `noRoute`.
    @discardableResult
    public func join(_ group: IPv4Address, ifindex: Int = 0) throws(SocketError) -> Int {
        let index = try device(for: group, ifindex: ifindex)
        let first = state.withLock { state -> Bool in
            let key = UInt64(index) << 32 | UInt64(group.hostOrder)
            state.memberships[key, default: 0] += 1
            guard state.memberships[key] == 1 else { return false }
            state.pending.append((index, group, .joined))
            return true
        }
        if first { changed(group, ifindex: index, joined: true) }
        return index
    }

    /// One membership fewer (Linux: `ip_mc_dec_group`); the last one leaves the group.
    public func leave(_ group: IPv4Address, ifindex: Int) {
        let last = state.withLock { state -> Bool in
            let key = UInt64(ifindex) << 32 | UInt64(group.hostOrder)
            guard let count = state.memberships[key] else { return false }
            if count > 1 {
                state.memberships[key] = count - 1
                return false
            }
            state.memberships[key] = nil
            state.pending.append((ifindex, group, .left))
            return true
        }
        if last { changed(group, ifindex: ifindex, joined: false) }
    }

    /// Serialises the device filter changes, each made from the membership as it stands.
    let filterLock = Lock<Void>(())

    /// The device's filter, route input (a new epoch) and a report for a group that came or went.
    /// The filter follows the membership as it is when the change runs — not as the caller
    /// saw it — so a join racing a leave cannot leave the MAC out while a member remains.
    func changed(_ group: IPv4Address, ifindex: Int, joined: Bool) {
        filterLock.withLock { _ in
            core.devices[ifindex]?.setMulticast(MACAddress(bits: 0x0100_5E00_0000 | UInt64(group.hostOrder & 0x7F_FFFF)),
                                                join: isMember(group, ifindex: ifindex))
        }
        fib.invalidateCaches()
        state.withLock { $0.tasklet }?.schedule()
    }

    // MARK: Receive

    /// Linux: `igmp_rcv` → `igmp_heard_query` for a batch with `data` at the IGMP message: a
    /// query — general, or for a group joined on the device it came in on — asks for a
    /// current-state report of what it names. Its version is told as RFC 3376 §7.1 tells it (8
    /// bytes: v1 when the maximum response code is 0, else v2; 12 or more: v3; other lengths
    /// are ignored); a v1 or v2 query puts the interface in that version's compatibility
    /// mode. Reports of other hosts and anything else are consumed. Drops: `.igmpInvalid`
    /// (shorter than 8 bytes or a bad checksum).
    public func receive(_ batch: inout PacketBatch, worker: Worker) {
        var wanted: [(Int, IPv4Address?)] = []
        var older: [(Int, UInt8)] = []
        for i in batch.indices {
            let skb = batch[i]
            let length = skb.length
            guard let message = unsafe IGMPHeader(skb.data, length: length), message.isChecksumValid(messageLength: length) else {
                worker.drop(skb, .igmpInvalid)
                continue
            }
            if message.type == .membershipQuery && (length == IGMPHeader.length || length >= 12) {
                let group = message.group
                let ifindex = Int(skb.inputIfindex)
                if length == IGMPHeader.length { older.append((ifindex, message.maxResponseCode == 0 ? 1 : 2)) }
                if group.isZero { wanted.append((ifindex, nil)) }
                else if isMember(group, ifindex: ifindex) { wanted.append((ifindex, group)) }
            }
            worker.cache.free(skb)
        }
        batch.removeAll()
        guard !wanted.isEmpty || !older.isEmpty else { return }
        let now = worker.clock.now()
        state.withLock { state in
            for (ifindex, version) in older {
                let current = state.olderQuerier[ifindex].flatMap { now < $0.until ? $0.version : nil } ?? 3
                state.olderQuerier[ifindex] = (min(current, version), now &+ IGMP.olderQuerierTimeout)
            }
            state.queriesReceived += wanted.count
            let general = Set(wanted.filter { $0.1 == nil }.map(\.0))
            for ifindex in general { state.pending.append((ifindex, nil, .current)) }
            for (ifindex, group) in wanted where group != nil && !general.contains(ifindex) {
                state.pending.append((ifindex, group, .current))
            }
        }
        // Answered at once: the stack does not spread answers over the query's maximum
        // response time as RFC 3376 §5.2 asks (a random delay per report), so on a link
        // with many such hosts the reports arrive together.
        sendPending(worker)
    }

    // MARK: Send

    /// Sends what is pending (on the tasklet's worker, or the worker a query came in on), in
    /// the version each interface reports with now.
    func sendPending(_ worker: Worker) {
        let now = worker.clock.now()
        let (pending, groups) = state.withLock { state -> ([(Int, IPv4Address?, Report)], [UInt64: Int]) in
            defer { state.pending.removeAll() }
            return (state.pending, state.memberships)
        }
        for (ifindex, group, report) in pending {
            let named = group.map { [$0] }
                ?? groups.keys.filter { Int($0 >> 32) == ifindex }.map { IPv4Address(hostOrder: UInt32(truncatingIfNeeded: $0)) }
            switch version(ifindex: ifindex, now: now) {
            case 3:
                // CHANGE_TO_EXCLUDE_MODE {} (join), CHANGE_TO_INCLUDE_MODE {} (leave) or
                // MODE_IS_EXCLUDE {} (a query's answer), as many per report as the MTU holds.
                let type: IGMPv3RecordType = switch report {
                case .joined: .changeToExclude
                case .left: .changeToInclude
                case .current: .modeIsExclude
                }
                let perReport = max(1, (core.mtu(ifindex: ifindex) - 24 - IGMPHeader.length) / IGMPv3ReportRepr.recordLength)
                var start = 0
                while start < named.count {
                    let end = min(start + perReport, named.count)
                    sendV3Report(IGMPv3ReportRepr(records: named[start..<end].map { (type, $0) }), ifindex: ifindex, worker: worker)
                    start = end
                }
            case let version:
                // One message per group: a report to the group, or (v2 only) a leave to
                // 224.0.0.2 (RFC 2236 §3; IGMPv1 has no leave).
                for group in named {
                    if report == .left {
                        if version == 2 {
                            send(IGMPRepr(type: .leaveGroup, group: group), to: IPv4Address(hostOrder: IGMP.allRouters), ifindex: ifindex,
                                 worker: worker)
                        }
                    } else {
                        send(IGMPRepr(type: version == 2 ? .v2MembershipReport : .v1MembershipReport, group: group), to: group,
                             ifindex: ifindex, worker: worker)
                    }
                }
            }
        }
    }

    /// An IGMPv3 membership report (RFC 3376 §4.2) to 224.0.0.22.
    func sendV3Report(_ report: IGMPv3ReportRepr, ifindex: Int, worker: Worker) {
        unsafe sendMessage(length: report.length, to: IPv4Address(hostOrder: IGMP.allReports), ifindex: ifindex, worker: worker) {
            unsafe report.emit(to: $0)
        }
    }

    /// An IGMPv1 or v2 message (RFC 1112, RFC 2236 §2) to `destination`.
    func send(_ message: IGMPRepr, to destination: IPv4Address, ifindex: Int, worker: Worker) {
        unsafe sendMessage(length: IGMPHeader.length, to: destination, ifindex: ifindex, worker: worker) { unsafe message.emit(to: $0) }
    }

    /// An IGMP message of `length` bytes (written by `fill`, with its checksum) to
    /// `destination` out of `ifindex`: TTL 1, TOS 0xC0 and a Router Alert option (RFC 2113),
    /// as Linux's `igmp_send_report` and `igmpv3_newpack` build them.
    func sendMessage(length messageLength: Int, to destination: IPv4Address, ifindex: Int, worker: Worker,
                     fill: (UnsafeMutableRawPointer) -> Void) {
        let route = ipv4.routeOutput(to: destination, tos: 0xC0, mark: 0, worker: worker, outputIfindex: ifindex)
        guard route.input == .forward, let skb = worker.cache.allocate() else { return }
        let headerLength = IPv4Header.minimumLength + IGMP.routerAlert.count
        guard let ip = unsafe skb.put(headerLength + messageLength) else {
            worker.cache.free(skb)
            return
        }
        let source = ipv4.addresses.sourceAddress(for: destination, ifindex: ifindex, worker: worker)
        unsafe IGMP.routerAlert.withUnsafeBytes { option in
            unsafe IPv4Repr(source: source, destination: destination, protocol: .igmp, ttl: 1, payloadLength: messageLength,
                     identification: ipv4.state(worker).nextIdentification(), dontFragment: true, dscp: 0xC0 >> 2)
                .emit(to: ip, options: option)
        }
        unsafe fill(ip + headerLength)
        route.apply(to: skb)
        skb.resetNetworkHeader()
        skb.setTransportHeader(afterNetworkBytes: headerLength)
        state.withLock { $0.reportsSent += 1 }
        withPacketBatch(capacity: 1) { batch in
            batch.append(skb)
            ipv4.ipLocalOut(&batch, worker: worker)
        }
    }
}
