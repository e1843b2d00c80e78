import DatapathCore
import DatapathWire

/// A received or outgoing datagram as the run-to-completion API sees it: an skb. These read a
/// received one in place (`data` at the payload, the IP and UDP headers set by `udp_rcv`) and
/// address an outgoing one (`udpDestination`), so a packet app handles datagrams with no copy
/// and no allocation.
extension SKB {
    /// The payload, in place (valid while the app holds the skb).
    @inlinable public var payload: UnsafeRawBufferPointer { unsafe UnsafeRawBufferPointer(start: data, count: length) }

    /// Who sent a received datagram: its IP source and UDP source port.
    public var udpRemote: SocketAddress {
        unsafe SocketAddress(IPv4Header(unchecked: networkHeader).source, UDPHeader(unchecked: transportHeader).sourcePort)
    }

    /// Where a received datagram was sent to (`IP_PKTINFO`'s `ipi_addr` and the port): the
    /// address to answer from.
    public var udpLocal: SocketAddress {
        unsafe SocketAddress(IPv4Header(unchecked: networkHeader).destination,
                      UDPHeader(unchecked: transportHeader).destinationPort)
    }

    /// Where `UDP.send(_:from:worker:)` sends this skb's payload; nil (the default of a fresh
    /// skb): the socket's connected peer (Linux: `msg_name` of one `sendmmsg` entry). Kept in
    /// `control0` until the send routes it.
    public var udpDestination: SocketAddress? {
        get {
            let tag = control0
            guard tag >> 63 != 0 else { return nil }
            return SocketAddress(IPv4Address(hostOrder: UInt32(truncatingIfNeeded: tag >> 16)),
                                 UInt16(truncatingIfNeeded: tag))
        }
        nonmutating set { control0 = SKB.udpDestinationTag(newValue) }
    }

    /// `udpDestination`'s encoding: 1 << 63 | address << 16 | port; 0 for nil.
    static func udpDestinationTag(_ destination: SocketAddress?) -> UInt64 {
        destination.map { 1 << 63 | UInt64($0.address.hostOrder) << 16 | UInt64($0.port) } ?? 0
    }
}

extension UDP {
    /// Bytes a datagram sent in place needs in front of its payload: the UDP and IP headers and
    /// the link layer's (Linux: `LL_RESERVED_SPACE` + the headers `ip_append_data` reserves).
    public static let sendHeadroom = UDPHeader.length + IPv4Header.minimumLength + 32

    /// The most datagrams `udp_rcv` hands a receiver at once, and the batch send passes to
    /// `ip_local_out` at once: 128 slots are 1 KiB, which `withUnsafeTemporaryAllocation` keeps
    /// on the stack (more would cost a heap allocation per batch).
    static var runCapacity: Int { 128 }

    /// `udp_sendmsg` for a batch (Linux: `sendmmsg`), the run-to-completion send: each skb holds
    /// a payload at `data` and its destination in `udpDestination` (nil: the connected peer).
    /// A datagram that fits its path MTU, has `sendHeadroom` in front and is not shared (a
    /// clone — a broadcast delivered to several sockets — reads the same bytes) gets its UDP
    /// and IP headers written in place — no copy: an echo server sends back the very skbs it
    /// received — and the lot goes to `ip_local_out` together; one that does not (fragments,
    /// or too little headroom) is built by the copying `send` and its skb freed. The socket's
    /// binding and options are read once, a route once per run of datagrams to one destination.
    ///
    /// Reads: the socket's entry and options, the route (output cache). Writes: the UDP and IP
    /// headers, the skb's route. Next: `ip_local_out` (OutDatagrams per datagram).
    /// Drops (each freed, the batch ends empty): a datagram whose send fails — the first
    /// failure is returned with the number sent (as `sendmmsg` returns the count and the error).
    /// Throws `notBound` (nothing sent; the batch is freed).
    @discardableResult
    public func send(_ datagrams: inout PacketBatch, from id: UInt32,
                     worker: Worker) throws(SocketError) -> (sent: Int, error: SocketError?) {
        guard let entry = sockets.entry(id, worker: worker) else {
            worker.cache.free(&datagrams)
            throw .notBound(id)
        }
        let options = self.options.read(worker)[id] ?? UDPSocketOptions()
        if options.cork || corks.isPending(id) {
            return sendCorked(&datagrams, from: id, worker: worker)
        }
        var ttl = options.ttl ?? ipv4.sysctls.read(worker).defaultTTL
        var routeError: SocketError?
        let bound = entry.local.address
        let wildcardSource = IPv4.routeChoosesSource(bound: bound)
        var firstError: SocketError?
        var sent = 0
        // The route and source of the last destination, reused while it repeats.
        var lastDestination: IPv4Address?
        var route = RouteResult(input: .none)
        var source = bound
        let ipState = ipv4.state(worker)
        withPacketBatch(capacity: max(1, min(datagrams.count, UDP.runCapacity))) { out in
            // In order, as sendmmsg sends: what is built in place waits in `out`, which leaves
            // before a datagram the copying path sends.
            func flush() {
                statistics.block(worker).add(UDPStatistics.Counter.outDatagrams.rawValue, UInt64(out.count))
                ipv4.ipLocalOut(&out, worker: worker)
            }
            for i in datagrams.indices {
                let skb = datagrams[i]
                var failure: SocketError?
                if let remote = skb.udpDestination ?? entry.remote {
                    if remote.port == 0 {
                        failure = .invalidDestination(remote)
                    } else {
                        if remote.address != lastDestination {
                            do throws(SocketError) {
                                (route, ttl) = try outputRoute(to: remote.address, entry: entry, options: options,
                                                               worker: worker)
                                routeError = nil
                            } catch {
                                route = RouteResult(input: .none)
                                routeError = error
                            }
                            lastDestination = remote.address
                            if route.input == .forward && wildcardSource {
                                source = ipv4.selectSource(for: remote.address, route: route, worker: worker)
                            }
                        }
                        let total = UDPHeader.length + skb.length
                        if let routeError {
                            failure = routeError
                        } else if IPv4Header.minimumLength + total <= Int(route.mtu) && skb.headroom >= UDP.sendHeadroom
                                    && (options.segmentSize == 0 || skb.length <= options.segmentSize) && !skb.isShared {
                            buildInPlace(skb, from: entry.local.port, source: source, to: remote, total: total, ttl: ttl,
                                         options: options, route: route, identification: ipState.nextIdentification())
                            if out.isFull { flush() }
                            out.append(skb)
                            sent += 1
                            continue
                        } else {
                            // The copying path: fragments, a datagram too long, or no room in front.
                            flush()
                            do throws(SocketError) {
                                unsafe try send(skb.payload, from: id, to: remote, worker: worker)
                                sent += 1
                            } catch {
                                failure = error
                            }
                        }
                    }
                } else {
                    failure = .notConnected
                }
                if let failure, firstError == nil { firstError = failure }
                worker.cache.free(skb)
            }
            datagrams.count = 0
            flush()
        }
        return (sent, firstError)
    }

    /// The batch under UDP_CORK or onto a pending datagram: each appended in turn (the copying
    /// path), as `sendmmsg` calls `sendmsg` per message.
    func sendCorked(_ datagrams: inout PacketBatch, from id: UInt32, worker: Worker) -> (sent: Int, error: SocketError?) {
        var firstError: SocketError?
        var sent = 0
        for i in datagrams.indices {
            let skb = datagrams[i]
            do throws(SocketError) {
                unsafe try send(skb.payload, from: id, to: skb.udpDestination, more: false, worker: worker)
                sent += 1
            } catch {
                if firstError == nil { firstError = error }
            }
            worker.cache.free(skb)
        }
        datagrams.removeAll()
        return (sent, firstError)
    }

    /// `udp_push_pending_frames` + `ip_push_pending_frames` for one datagram in place: the UDP
    /// header and checksum (0 → 0xFFFF, RFC 768; only the pseudo-header sum, left partial, for
    /// a device that offloads checksums) and the IP header pushed in front of the
    /// payload, the route set; transmit metadata from a received skb cleared.
    @inline(__always)
    func buildInPlace(_ skb: SKB, from port: UInt16, source: IPv4Address, to remote: SocketAddress, total: Int,
                      ttl: UInt8, options: UDPSocketOptions, route: RouteResult, identification: UInt16) {
        let raw = unsafe skb.push(UDPHeader.length)!
        let udp = unsafe UDPHeader(unchecked: raw)
        udp.setFields(sourcePort: port, destinationPort: remote.port, length: UInt16(total), checksum: 0)
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: remote.address, protocol: .udp,
                                                      length: total)
        // A device that offloads completes it (CHECKSUM_PARTIAL); the caller checked the
        // datagram is one packet.
        let partial = checksumOffloads.contains(ifindex: Int(route.outputIfindex))
        if partial {
            udp.checksum = InternetChecksum.fold(pseudo)
        } else {
            let value = unsafe ~InternetChecksum.fold(InternetChecksum.sum(raw, count: total, initial: pseudo))
            udp.checksum = value == 0 ? 0xFFFF : value
        }
        let ip = unsafe skb.push(IPv4Header.minimumLength)!
        unsafe IPv4Repr(source: source, destination: remote.address, protocol: .udp, ttl: ttl,
                 payloadLength: total, identification: identification,
                 dontFragment: options.pathMTUDiscovery != .dont, dscp: options.tos >> 2, ecn: options.tos & 0x03)
            .emit(to: ip, checksum: false)  // ip_local_out fills it
        if partial {
            unsafe skb.setPartialChecksum(header: raw, offset: UDPHeader.checksumOffset)
        } else {
            skb.checksumState = .none
        }
        skb.gsoSize = 0
        skb.gsoType = .none
        route.apply(to: skb)
        skb.resetNetworkHeader()
        skb.setTransportHeader(afterNetworkBytes: IPv4Header.minimumLength)
    }
}
