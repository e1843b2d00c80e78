import DatapathCore
import DatapathWire

extension ICMP {
    /// Sends an ICMP error about `skb` back to its source (Linux: `icmp_send` / `__icmp_send`).
    /// `skb` stays the caller's (it drops it); its network header must be set.
    ///
    /// The message: type, code, `info` in the second word (the next-hop MTU for fragmentation
    /// needed), then the offending IPv4 header and the first 8 bytes after it (RFC 792). The
    /// IPv4 header: TOS = the original's TOS bits | 0xC0 (internetwork control), TTL
    /// `defaultTTL`, source = the original destination when it was ours, else the address of
    /// the device the route back leaves by (Linux: `inet_select_addr`).
    ///
    /// Sends nothing (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7) about a frame that was not unicast to
    /// us, a broadcast or multicast destination, a source that is not a unicast host, a
    /// fragment other than the first, or an ICMP error; nor past the rate limits
    /// (OutRateLimitGlobal, OutRateLimitHost), nor without a route back (OutNoRoutes).
    package func sendError(for skb: SKB, type: ICMPType, code: ICMPCode, info: UInt32 = 0, worker: Worker) {
        let dst = ipv4.state(worker).dsts[skb.dst]
        guard skb.packetType == .host, !dst.flags.contains(.broadcast) else { return }
        let ip = unsafe skb.networkHeader
        let header = unsafe IPv4Header(unchecked: ip)
        let available = unsafe skb.length + (skb.data - ip)
        let headerLength = header.headerLength
        let destination = header.source
        let original = header.destination
        guard !destination.isZero, !destination.isMulticast, !destination.isBroadcast, !destination.isLoopback,
              !original.isMulticast, !original.isBroadcast else { return }
        // Only the first fragment.
        guard header.fragmentOffset == 0 else { return }
        // Never an error about an ICMP error (or an unknown type).
        if header.protocol == .icmp {
            guard available > headerLength else { return }
            let inner = unsafe ICMPHeader(unchecked: header.payload).type
            if inner.rawValue > 18 || inner.isError { return }
        }
        let counters = statistics.block(worker)
        let limiter = limiters[worker]
        switch limiter.allow(type: type, code: code, destination: destination, now: worker.clock.now()) {
        case .allowed: break
        case .limitedGlobal:
            counters.add(ICMPStatistics.Counter.outRateLimitGlobal.rawValue)
            return
        case .limitedHost:
            counters.add(ICMPStatistics.Counter.outRateLimitHost.rawValue)
            return
        }
        let tos = (header.typeOfService & 0x1E) | 0xC0
        let route = ipv4.routeOutput(to: destination, tos: tos, mark: skb.mark, worker: worker)
        guard route.input == .forward else {
            ipv4.statistics.block(worker).add(IPStatistics.Counter.outNoRoutes.rawValue)
            return
        }
        // A source that routes as a subnet's broadcast is no unicast host; one of our own
        // addresses on a packet from outside is spoofed (only what came back on lo is ours).
        guard route.flags.isDisjoint(with: [.broadcast, .multicast]) else { return }
        guard unsafe !route.flags.contains(.local) || skb.inputIfindex == ipv4.loopbackIfindex else { return }
        let source = dst.flags.contains(.local)
            ? original : ipv4.selectSource(for: destination, route: route, worker: worker)
        guard !source.isZero else { return }
        let quoted = min(headerLength + 8, available)
        // icmp_push_reply: the ICMP header with its checksum over header and quote, then
        // ip_append_data → ip_push_pending_frames on the ICMP socket (DF never set).
        var message: UInt64 = 0
        unsafe withUnsafeMutableBytes(of: &message) { raw in
            let icmp = unsafe ICMPHeader(unchecked: raw.baseAddress!)
            icmp.type = type
            icmp.code = code
            icmp.checksum = 0
            icmp.restOfHeader = info
            let sum = unsafe InternetChecksum.sum(raw.baseAddress!, count: ICMPHeader.length)
            icmp.checksum = unsafe ~InternetChecksum.fold(InternetChecksum.sum(ip, count: quoted, initial: sum))
        }
        do throws(SocketError) {
            unsafe try withUnsafeBytes(of: &message) { (header) throws(SocketError) in
                unsafe try ipv4.appendData(header: header, payload: UnsafeRawBufferPointer(start: ip, count: quoted),
                                    source: source, destination: destination, protocol: .icmp,
                                    ttl: ipv4.sysctls.read(worker).defaultTTL, tos: tos, pathMTUDiscovery: .dont, route: route,
                                    worker: worker, mark: skb.mark, deferred: true)
            }
        } catch {
            counters.add(ICMPStatistics.Counter.outErrors.rawValue)
        }
    }

    /// Counts a message sent (Linux: `icmp_out_count`): OutMsgs and the type's `Out…`
    /// counter — for the stack's own messages and those raw sockets send.
    func countOutput(_ type: ICMPType, worker: Worker) {
        let counters = statistics.block(worker)
        counters.add(ICMPStatistics.Counter.outMsgs.rawValue)
        if let counter = ICMPStatistics.output(type) { counters.add(counter.rawValue) }
    }
}
