import DatapathCore
import DatapathWire

/// ICMP for IPv4 (Linux: `net/ipv4/icmp.c`): `icmp_rcv` as the handler of IP protocol 1 —
/// echo requests answered (`icmp_echo` → `icmp_reply`), everything else counted and consumed
/// (error messages reach transport protocols when those land) — and `icmp_send` for the
/// errors the IPv4 stages raise (`sendError`), with Linux's rate limits.
public final class ICMP: IPProtocolHandler, @unchecked Sendable {
    unowned let ipv4: IPv4
    public let statistics: ICMPStatistics
    let limiters: WorkerLocal<ICMPRateLimiter>
    /// Linux: `icmp_echo_ignore_broadcasts` (default on: no smurf amplifier).
    public var echoIgnoreBroadcasts = true
    /// Linux: `icmp_echo_ignore_all`.
    public var echoIgnoreAll = false
    public let rcvStage = StageID.named("icmp-rcv")

    init(ipv4: IPv4, workers: Int, rateLimits: ICMPRateLimitParameters = .linuxDefaults,
         clock: any DatapathClock = MonotonicClock()) {
        self.ipv4 = ipv4
        statistics = ICMPStatistics(workers: workers)
        let now = clock.now()
        limiters = WorkerLocal(workers: max(1, workers)) { _ in ICMPRateLimiter(parameters: rateLimits, now: now) }
    }

    /// Linux: `icmp_rcv`, for a batch with `data` at the ICMP header.
    ///
    /// Reads: the ICMP header and checksum (unless `checksumState` says verified), the route's
    /// broadcast flag. Writes: an echo request becomes its reply in place (copied first when
    /// shared), queued for `ipLocalOut`.
    /// Drops: `.packetTooSmall` (under 8 bytes: InErrors), `.icmpChecksum` (InCsumErrors,
    /// InErrors), `.icmpIgnored` (an echo to a broadcast address, or echo ignored),
    /// `.ipOutNoRoute` (no route back), `.noMemory`. Other messages are consumed.
    public func receive(_ batch: inout PacketBatch, worker: Worker) {
        let start = cycleCount()
        let counters = statistics.block(worker)
        for i in batch.indices {
            let skb = batch[i]
            let length = skb.length
            guard length >= ICMPHeader.length else {
                counters.add(ICMPStatistics.Counter.inErrors.rawValue)
                worker.drop(skb, .packetTooSmall)
                continue
            }
            if unsafe skb.checksumState != .unnecessary && InternetChecksum.checksum(skb.data, count: length) != 0 {
                counters.add(ICMPStatistics.Counter.inCsumErrors.rawValue)
                counters.add(ICMPStatistics.Counter.inErrors.rawValue)
                worker.drop(skb, .icmpChecksum)
                continue
            }
            counters.add(ICMPStatistics.Counter.inMsgs.rawValue)
            let type = unsafe ICMPHeader(unchecked: skb.data).type
            if let counter = ICMPStatistics.input(type) { counters.add(counter.rawValue) }
            guard type == .echoRequest else {
                if type == .destinationUnreachable { icmpUnreachable(skb, worker: worker) }
                if type == .destinationUnreachable || type == .timeExceeded || type == .parameterProblem {
                    icmpSocketDeliver(skb, type: type, worker: worker)
                }
                worker.cache.free(skb)
                continue
            }
            if echoIgnoreAll || (echoIgnoreBroadcasts && ipv4.state(worker).dsts[skb.dst].flags.contains(.broadcast)) {
                worker.drop(skb, .icmpIgnored)
                continue
            }
            echoReply(skb, worker: worker)
        }
        worker.stages.record(rcvStage, packets: batch.count, cycles: cycleCount() &- start)
        batch.removeAll()
    }

    /// Answers an echo request (Linux: `icmp_echo` → `icmp_reply` → `icmp_push_reply` →
    /// `ip_append_data` → `ip_push_pending_frames`): type 0, the request's checksum patched
    /// for it (RFC 1624), its identifier, sequence and data copied into a new datagram from
    /// the request's destination — or, for a broadcast, the address of the route back — to
    /// its source, TTL `defaultTTL`, TOS and mark kept, DF never set (the ICMP socket's
    /// `IP_PMTUDISC_DONT`), record route and timestamp options echoed (`ip_options_echo`).
    /// A reply longer than the path leaves in fragments. The request is consumed.
    /// Drops: `.ipOutNoRoute` (no route back, or one to a broadcast or group), `.noMemory`.
    func echoReply(_ skb: SKB, worker: Worker) {
        let original = unsafe skb.networkHeader
        let request = unsafe IPv4Header(unchecked: original)
        let tos = request.typeOfService
        let requester = request.source
        let requested = request.destination
        let route = ipv4.routeOutput(to: requester, tos: tos, mark: skb.mark, worker: worker)
        // A requester whose address routes as a broadcast (or group) gets no answer.
        guard route.input == .forward, route.flags.isDisjoint(with: [.broadcast, .multicast]) else {
            ipv4.statistics.block(worker).add(IPStatistics.Counter.outNoRoutes.rawValue)
            worker.drop(skb, .ipOutNoRoute)
            return
        }
        let source = ipv4.state(worker).dsts[skb.dst].flags.contains(.local)
            ? requested : ipv4.selectSource(for: requester, route: route, worker: worker)
        // Record route and timestamp come back with this host in them (`ip_options_echo`).
        var options = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let requestHeaderLength = request.headerLength
        let optionLength = unsafe requestHeaderLength > 20 ? withUnsafeMutableBytes(of: &options) {
            unsafe ipv4.echoOptions(of: original, headerLength: requestHeaderLength, address: source, into: $0.baseAddress!,
                                worker: worker)
        } : 0
        // Type and code become 0 (echo reply), the checksum patched for them.
        var header: UInt64 = 0
        unsafe withUnsafeMutableBytes(of: &header) { raw in
            unsafe raw.baseAddress!.copyMemory(from: skb.data, byteCount: ICMPHeader.length)
            let icmp = unsafe ICMPHeader(unchecked: raw.baseAddress!)
            let typeCode = UInt16(icmp.type.rawValue) << 8 | UInt16(icmp.code.rawValue)
            icmp.type = .echoReply
            icmp.code = 0
            icmp.checksum = InternetChecksum.update(icmp.checksum, old: typeCode, new: 0)
        }
        do throws(SocketError) {
            unsafe try withUnsafeBytes(of: &header) { (header) throws(SocketError) in
                unsafe try withUnsafeBytes(of: &options) { (options) throws(SocketError) in
                    unsafe try ipv4.appendData(header: header,
                                        payload: UnsafeRawBufferPointer(start: skb.data + ICMPHeader.length,
                                                                        count: skb.length - ICMPHeader.length),
                                        source: source, destination: requester, protocol: .icmp,
                                        ttl: ipv4.sysctls.read(worker).defaultTTL, tos: tos, pathMTUDiscovery: .dont,
                                        route: route, worker: worker,
                                        options: UnsafeRawBufferPointer(rebasing: options.prefix(optionLength)),
                                        mark: skb.mark, deferred: true)
                }
            }
        } catch {
            worker.drop(skb, .noMemory)
            return
        }
        worker.cache.free(skb)
    }
}

extension ICMP {
    /// Linux: `icmp_unreach` for "fragmentation needed" (RFC 1191): a router on the way to the
    /// quoted packet's destination cannot pass it; when we sent it (its source is ours), the
    /// destination's path MTU is lowered (`ipv4_update_pmtu` → `__ip_rt_update_pmtu`). A
    /// message without an MTU (RFC 1191 §5's old routers) or quoting too little is ignored.
    func icmpUnreachable(_ skb: SKB, worker: Worker) {
        let header = unsafe ICMPHeader(unchecked: skb.data)
        guard header.code == ICMPCode.DestinationUnreachable.fragmentationNeeded,
              skb.length >= ICMPHeader.length + IPv4Header.minimumLength,
              let quoted = unsafe IPv4Header(skb.data + ICMPHeader.length, length: skb.length - ICMPHeader.length),
              ipv4.addresses.isLocal(quoted.source, worker: worker) else { return }
        let mtu = Int(header.nextHopMTU)
        guard mtu >= 68 else { return }
        let destination = quoted.destination
        let route = ipv4.routeOutput(to: destination, tos: 0, mark: skb.mark, worker: worker)
        guard route.input == .forward, route.flags.isDisjoint(with: [.broadcast, .multicast]) else { return }
        ipv4.pmtuExceptions.update(destination, mtu: mtu, routeMTU: Int(route.mtu), now: worker.clock.now())
    }
}

extension ICMP {
    /// Hands an ICMP error to the protocol of the packet it quotes (Linux: `icmp_socket_deliver`
    /// → `raw_icmp_error` for the raw sockets of the quoted protocol, then the protocol's
    /// `err_handler`), when the quote holds the whole IPv4 header and 8 bytes of what followed
    /// (RFC 792). The protocol finds the socket the quoted packet left from, if any, as Linux
    /// does; nothing checks that the quoted source is one of our addresses.
    func icmpSocketDeliver(_ skb: SKB, type: ICMPType, worker: Worker) {
        let header = unsafe ICMPHeader(unchecked: skb.data)
        let quotedLength = skb.length - ICMPHeader.length
        guard let quoted = unsafe IPv4Header(skb.data + ICMPHeader.length, length: quotedLength),
              quoted.headerLength + 8 <= quotedLength else { return }
        let offender = unsafe IPv4Header(unchecked: skb.networkHeader).source
        unsafe ipv4.raw?.icmpError(type: type, code: header.code, info: header.restOfHeader, quoted: quoted,
                            quotedLength: quotedLength, offender: offender, worker: worker)
        ipv4.protocolHandler(quoted.protocol)?.icmpError(type: type, code: header.code, info: header.restOfHeader,
                                                          quoted: quoted, quotedLength: quotedLength, offender: offender,
                                                          worker: worker)
    }
}
