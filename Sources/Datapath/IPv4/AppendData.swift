import DatapathCore
import DatapathWire

extension IPv4 {
    /// Linux: `ip_append_data` → `ip_push_pending_frames` → `ip_local_out`, for one datagram
    /// whose transport bytes are `header` ++ `payload` (the protocol's header — UDP's 8 bytes,
    /// or none for a raw socket — then the caller's bytes), on a route already chosen.
    ///
    /// The datagram is built straight from the caller's bytes into skbs no longer than the
    /// path MTU: one, or — longer than the path — fragments of `(mtu − 20) & ~7` bytes (within
    /// what a pool buffer holds) sharing one identification, MF on all but the last. DF is set
    /// when it fits and `pathMTUDiscovery` is not `.dont`; a datagram that fits the path but not
    /// a pool buffer (a jumbo MTU) takes a 64 KiB buffer. Reads: the route (device, MTU,
    /// neighbour). Writes: one IP header per skb. Next: `ip_local_out`.
    ///
    /// `options` (a multiple of 4 bytes, at most 40: the stack's own replies echo record route
    /// and timestamp, `ip_options_echo`) go in the first fragment's header only: neither
    /// option is copied into later fragments (RFC 791). `mark` is the packets' `skb->mark`.
    /// `deferred` (the stack's own messages, raised while a batch is in flight: `icmp_reply`,
    /// `icmp_send`) queues the skbs to leave when the current batch ends instead of sending
    /// them now.
    /// Throws `noBufferSpace` (a pool empty: nothing is sent). Callers check the length
    /// against the path with `.do` (EMSGSIZE) before they build their header.
    func appendData(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, source: IPv4Address,
                    destination: IPv4Address, protocol number: IPProtocol, ttl: UInt8, tos: UInt8,
                    pathMTUDiscovery: PathMTUDiscovery, route: RouteResult, worker: Worker,
                    options: UnsafeRawBufferPointer = unsafe UnsafeRawBufferPointer(start: nil, count: 0), mark: UInt32 = 0,
                    deferred: Bool = false, partialChecksum: Int? = nil) throws(SocketError) {
        precondition(options.count & 3 == 0 && options.count <= 40, "IPv4 options are whole words, at most 40 bytes")
        let mtu = Int(route.mtu)
        let total = header.count + payload.count
        let firstHeaderLength = IPv4Header.minimumLength + options.count
        let fits = firstHeaderLength + total <= mtu
        let dontFragment = pathMTUDiscovery != .dont && fits
        var failure: SocketError?
        var fragments = 0
        // One skb when it fits (slots on the stack: no allocation per datagram); fragments get
        // a whole batch.
        withPacketBatch(capacity: fits ? 1 : PacketBatch.maximumCount) { batch in
            let identification = state(worker).nextIdentification()
            var offset = 0
            while offset < total {
                let headerLength = offset == 0 ? firstHeaderLength : IPv4Header.minimumLength
                // What fits the path (a jumbo MTU) but not a pool buffer takes a 64 KiB one.
                guard let skb = fits ? allocateLarge(bytes: headerLength + total, worker: worker)
                    : worker.cache.allocate() else {
                    worker.cache.free(&batch)
                    failure = .noBufferSpace
                    return
                }
                let room = (skb.tailroom - headerLength) & ~7
                let unit = fits ? total : min((mtu - headerLength) & ~7, room)
                let length = min(total - offset, unit)
                guard length > 0, let ip = unsafe skb.put(headerLength + length) else {
                    worker.cache.free(skb)
                    worker.cache.free(&batch)
                    failure = .noBufferSpace
                    return
                }
                unsafe IPv4Repr(source: source, destination: destination, protocol: number, ttl: ttl,
                         payloadLength: length, identification: identification, dontFragment: dontFragment,
                         dscp: tos >> 2, ecn: tos & 0x03).emit(to: ip, checksum: false)  // ip_local_out fills it
                let last = offset + length == total
                let view = unsafe IPv4Header(unchecked: ip)
                if headerLength > IPv4Header.minimumLength {
                    unsafe (ip + IPv4Header.minimumLength).copyMemory(from: options.baseAddress!, byteCount: options.count)
                    view.headerLength = headerLength
                    view.totalLength = UInt16(headerLength + length)
                }
                view.flagsAndFragmentOffset = (dontFragment ? 0x4000 : 0) | (last ? 0 : 0x2000) | UInt16(offset / 8)
                // The transport bytes [offset, offset + length) of header ++ payload.
                var written = 0
                let out = unsafe ip + headerLength
                if offset < header.count {
                    let n = min(header.count - offset, length)
                    unsafe out.copyMemory(from: header.baseAddress! + offset, byteCount: n)
                    written = n
                }
                if written < length, let base = payload.baseAddress {
                    let from = offset + written - header.count
                    unsafe (out + written).copyMemory(from: base + from, byteCount: length - written)
                }
                route.apply(to: skb)
                // CHECKSUM_PARTIAL: the device sums from the transport header on.
                if let place = partialChecksum, fits { unsafe skb.setPartialChecksum(header: out, offset: place) }
                skb.mark = mark
                skb.resetNetworkHeader()
                skb.setTransportHeader(afterNetworkBytes: headerLength)
                if deferred {
                    queueLocalOut(skb, worker: worker)
                } else {
                    if batch.isFull { ipLocalOut(&batch, worker: worker) }
                    batch.append(skb)
                }
                offset += length
                fragments += 1
            }
            ipLocalOut(&batch, worker: worker)
        }
        if let failure { throw failure }
        if !fits {
            // As Linux's ip_fragment counts the pieces of a queue ip_append_data built.
            let counters = statistics.block(worker)
            counters.add(IPStatistics.Counter.fragOKs.rawValue)
            counters.add(IPStatistics.Counter.fragCreates.rawValue, UInt64(fragments))
        }
        if number == .icmp, let type = unsafe (header.first ?? payload.first) {
            icmp.countOutput(ICMPType(rawValue: type), worker: worker)   // as __ip_make_skb does
        }
    }

    /// The route for a datagram a socket sends (Linux: `ip_route_output_flow` as `udp_sendmsg`
    /// and `raw_sendmsg` ask for it): for a group or a broadcast out of `multicastInterface`
    /// (`IP_MULTICAST_IF`) or else the bound device, looped back to this host per
    /// `multicastLoop`; a broadcast only with `broadcast` (SO_BROADCAST). Also the TTL:
    /// `multicastTTL` for a group, else `ttl` or the stack's default. Throws `noRoute`,
    /// `broadcastNotPermitted`.
    @inline(__always)
    func datagramRoute(to destination: IPv4Address, tos: UInt8, boundIfindex: Int, multicastInterface: Int,
                       multicastLoop: Bool, broadcast: Bool, ttl: UInt8?, multicastTTL: UInt8,
                       worker: Worker) throws(SocketError) -> (RouteResult, ttl: UInt8) {
        let group = destination.isMulticast || destination.isBroadcast
        let oif = group ? (multicastInterface != 0 ? multicastInterface : boundIfindex) : 0
        let route = routeOutput(to: destination, tos: tos, mark: 0, worker: worker, outputIfindex: oif,
                                multicastLoop: multicastLoop)
        guard route.input == .forward else { throw .noRoute(destination) }
        if route.flags.contains(.broadcast) && !broadcast { throw .broadcastNotPermitted(destination) }
        return (route, route.flags.contains(.multicast) ? multicastTTL : ttl ?? sysctls.read(worker).defaultTTL)
    }

    /// Whether a socket bound to `address` lets the route choose its source: a wildcard,
    /// broadcast or multicast bound address is no source (Linux clears `inet_saddr` for the
    /// latter two).
    @inline(__always)
    static func routeChoosesSource(bound address: IPv4Address) -> Bool {
        address.isZero || address.isBroadcast || address.isMulticast
    }

    /// The source of a datagram from a socket bound to `bound` (`routeChoosesSource`: then
    /// the one `selectSource` gives for the route's device).
    @inline(__always)
    func datagramSource(bound: IPv4Address, to destination: IPv4Address, route: RouteResult,
                        worker: Worker) -> IPv4Address {
        IPv4.routeChoosesSource(bound: bound) ? selectSource(for: destination, route: route, worker: worker) : bound
    }
}
