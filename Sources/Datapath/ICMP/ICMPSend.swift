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
    public func sendError(for skb: SKB, type: ICMPType, code: UInt8, info: UInt32 = 0, worker: Worker) {
        let dst = ipv4.state(worker).dsts[skb.dst]
        guard skb.packetType == .host, dst.flags & RouteResult.broadcast == 0 else { return }
        let ip = skb.networkHeader
        let available = skb.length + (skb.data - ip)
        let headerLength = Int(ip.load(as: UInt8.self) & 0x0F) &* 4
        let destination = IPv4Address(loadingFrom: ip + 12)
        let original = IPv4Address(loadingFrom: ip + 16)
        guard !destination.isZero, !destination.isMulticast, !destination.isBroadcast, !destination.isLoopback,
              !original.isMulticast, !original.isBroadcast else { return }
        // Only the first fragment.
        guard UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & 0x1FFF == 0 else { return }
        // Never an error about an ICMP error (or an unknown type).
        if ip.load(fromByteOffset: 9, as: UInt8.self) == IPProtocol.icmp.rawValue {
            guard available > headerLength else { return }
            let inner = ICMPType(rawValue: ip.load(fromByteOffset: headerLength, as: UInt8.self))
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
        let tos = (ip.load(fromByteOffset: 1, as: UInt8.self) & 0x1E) | 0xC0
        let route = ipv4.routeOutput(to: destination, tos: tos, mark: skb.mark, worker: worker)
        guard route.input == .forward else {
            ipv4.statistics.block(worker).add(IPStatistics.Counter.outNoRoutes.rawValue)
            return
        }
        let source = dst.flags & RouteResult.local != 0
            ? original : ipv4.addresses.sourceAddress(for: destination, ifindex: Int(route.outputIfindex), worker: worker)
        guard !source.isZero else { return }
        let quoted = min(headerLength + 8, available)
        let length = IPv4Header.minimumLength + ICMPHeader.length + quoted
        guard let message = worker.cache.allocate() else {
            counters.add(ICMPStatistics.Counter.outErrors.rawValue)
            return
        }
        guard let out = message.put(length) else {
            worker.cache.free(message)
            counters.add(ICMPStatistics.Counter.outErrors.rawValue)
            return
        }
        ipv4.writeHeader(out, tos: tos, totalLength: length, protocol: .icmp, source: source,
                         destination: destination, worker: worker)
        let icmp = out + IPv4Header.minimumLength
        icmp.storeBytes(of: type.rawValue, as: UInt8.self)
        icmp.storeBytes(of: code, toByteOffset: 1, as: UInt8.self)
        icmp.storeBytes(of: UInt16(0), toByteOffset: 2, as: UInt16.self)
        icmp.storeBytes(of: info.bigEndian, toByteOffset: 4, as: UInt32.self)
        (icmp + ICMPHeader.length).copyMemory(from: ip, byteCount: quoted)
        ICMPHeader(unchecked: icmp).fillChecksum(messageLength: ICMPHeader.length + quoted)
        route.apply(to: message)
        message.mark = skb.mark
        message.resetNetworkHeader()
        message.setTransportHeader(afterNetworkBytes: IPv4Header.minimumLength)
        counters.add(ICMPStatistics.Counter.outMsgs.rawValue)
        if let counter = ICMPStatistics.output(type) { counters.add(counter.rawValue) }
        ipv4.queueLocalOut(message, worker: worker)
    }
}
