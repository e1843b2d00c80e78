import DatapathCore
import DatapathWire

/// How a socket treats the path MTU (Linux: `IP_MTU_DISCOVER`).
public enum PathMTUDiscovery: Sendable, Equatable {
    /// `IP_PMTUDISC_DONT`: DF never set; datagrams longer than the path leave in fragments.
    case dont
    /// `IP_PMTUDISC_WANT` (UDP's default): DF on what fits the path MTU, local fragmentation of
    /// what does not.
    case want
    /// `IP_PMTUDISC_DO`: DF always; a datagram longer than the path MTU is refused (EMSGSIZE).
    case `do`
}

/// A UDP socket's send options (Linux: `IP_TTL`, `IP_TOS`, `IP_MTU_DISCOVER`, `SO_BROADCAST`,
/// `IP_MULTICAST_IF`, `IP_MULTICAST_TTL`, `IP_MULTICAST_LOOP`, `UDP_SEGMENT`, `UDP_CORK`).
public struct UDPSocketOptions: Sendable, Equatable {
    /// nil: the stack's `ip_default_ttl`.
    public var ttl: UInt8?
    public var tos: UInt8 = 0
    public var pathMTUDiscovery: PathMTUDiscovery = .want
    /// May send to broadcast addresses (`SO_BROADCAST`); without it such a send is refused
    /// (`broadcastNotPermitted`, Linux's EACCES).
    public var broadcast = false
    /// The device multicast (and limited broadcast) leaves by (`IP_MULTICAST_IF`); 0: the one
    /// the route to the group names.
    public var multicastInterface = 0
    /// The TTL of multicast datagrams (`IP_MULTICAST_TTL`, 1: this link only).
    public var multicastTTL: UInt8 = 1
    /// `IP_MULTICAST_LOOP` (on by default, as in Linux): a datagram sent to a group joined on
    /// the device it leaves by also comes back to this host's members of it (TTL 0: only to
    /// them). Limited broadcasts always come back, as Linux's do.
    public var multicastLoop = true
    /// `IP_RECVERR`: every ICMP error about the socket's datagrams reaches it, connected or
    /// not, with its details kept on the socket's error queue (`UDPSocket.receiveError()`), as
    /// is EMSGSIZE met sending; without it a connected socket hears only of hard errors.
    public var receiveErrors = false
    /// `UDP_SEGMENT` (0: off): a send longer than this becomes datagrams of this many bytes
    /// (the last shorter), built as one GSO packet that leaves whole through a device with
    /// segmentation offload (the kernel segments it behind AF_PACKET) or is segmented in
    /// software. Each segment must fit the path MTU, and there are at most 64.
    public var segmentSize = 0
    /// `UDP_CORK`: sends append to one pending datagram until it is cleared (and
    /// `UDP.pushPending` or the next send without it sends the whole).
    public var cork = false

    public init(ttl: UInt8? = nil, tos: UInt8 = 0, pathMTUDiscovery: PathMTUDiscovery = .want, broadcast: Bool = false,
                multicastInterface: Int = 0, multicastTTL: UInt8 = 1, multicastLoop: Bool = true, segmentSize: Int = 0,
                cork: Bool = false, receiveErrors: Bool = false) {
        self.receiveErrors = receiveErrors
        self.multicastLoop = multicastLoop
        self.segmentSize = segmentSize
        self.cork = cork
        self.ttl = ttl
        self.tos = tos
        self.pathMTUDiscovery = pathMTUDiscovery
        self.broadcast = broadcast
        self.multicastInterface = multicastInterface
        self.multicastTTL = multicastTTL
    }
}

/// The routes of connected sockets as one worker keeps them (Linux: `sk_dst_cache`, set when
/// `ip4_datagram_connect` routes and checked by `sk_dst_check` on every send): a handle on
/// the dst, revalidated with two compares; a route change (a new FIB epoch) or a path-MTU
/// exception (a dst of its own per batch) fails the check and the send routes again.
/// Direct-mapped by socket id; a slot is keyed by the socket, its peer and its TOS.
final class ConnectedRoutes {
    struct Slot {
        var socket: UInt32
        var remote: SocketAddress
        var tos: UInt8
        var handle: DstHandle
        var route: RouteResult
    }
    static let size = 64
    var slots = [Slot?](repeating: nil, count: ConnectedRoutes.size)
}

extension UDP {
    /// The kept route of connected socket `id` to `remote`, if still current.
    @inline(__always)
    func heldRoute(_ id: UInt32, to remote: SocketAddress, tos: UInt8, worker: Worker) -> RouteResult? {
        let routes = connectedRoutes[worker]
        guard let slot = routes.slots[Int(id & UInt32(ConnectedRoutes.size - 1))], slot.socket == id,
              slot.remote == remote, slot.tos == tos, ipv4.checkRoute(slot.handle, worker: worker) else { return nil }
        return slot.route
    }

    /// Keeps a connected socket's unicast route for its next sends.
    func holdRoute(_ route: RouteResult, for id: UInt32, to remote: SocketAddress, tos: UInt8, worker: Worker) {
        guard route.flags.isDisjoint(with: [.broadcast, .multicast, .local]) else { return }
        connectedRoutes[worker].slots[Int(id & UInt32(ConnectedRoutes.size - 1))] =
            ConnectedRoutes.Slot(socket: id, remote: remote, tos: tos, handle: ipv4.holdRoute(route, worker: worker),
                                 route: route)
    }

    /// The route for a datagram to `destination` as `udp_sendmsg` asks for it: a bound
    /// device or `IP_MULTICAST_IF` for multicast and broadcast, broadcast only with
    /// SO_BROADCAST. Also the TTL: `IP_MULTICAST_TTL` for a group, else the socket's or the
    /// stack's default.
    @inline(__always)
    func outputRoute(to destination: IPv4Address, entry: InetHashTable.Entry, options: UDPSocketOptions,
                     worker: Worker) throws(SocketError) -> (RouteResult, ttl: UInt8) {
        try ipv4.datagramRoute(to: destination, tos: options.tos, boundIfindex: entry.ifindex,
                               multicastInterface: options.multicastInterface, multicastLoop: options.multicastLoop,
                               broadcast: options.broadcast, ttl: options.ttl, multicastTTL: options.multicastTTL,
                               worker: worker)
    }
}

extension UDP {
    /// The largest payload one datagram carries (65535 − IPv4 and UDP headers).
    public static let maximumPayload = 65507

    /// Sends one datagram from bound socket `id` (Linux: `udp_sendmsg` → `ip_route_output_flow`
    /// → `ip_append_data` → `udp_push_pending_frames` → `ip_push_pending_frames` →
    /// `ip_local_out`), to `destination` or, when nil, to the socket's connected peer.
    ///
    /// The source address is the socket's, or for a wildcard-bound socket the one
    /// `inet_select_addr` picks for the route's device. The datagram is built straight from
    /// `payload` into skbs no longer than the path MTU: one, or — longer than the path and
    /// allowed to be — fragments of `(mtu − 20) & ~7` bytes sharing one identification, the
    /// UDP checksum computed over the whole datagram first (0 is sent as 0xFFFF, RFC 768), or
    /// left partial for a device that offloads checksums when the datagram is one packet.
    /// Counts OutDatagrams. Throws `notBound`, `notConnected`, `invalidDestination` (port 0),
    /// `messageTooLong` (over 65507
    /// bytes, or over the path MTU with `.do`), `noRoute`, `noBufferSpace` (the pool is empty:
    /// nothing is sent).
    public func send(_ payload: UnsafeRawBufferPointer, from id: UInt32, to destination: SocketAddress? = nil,
                     worker: Worker) throws(SocketError) {
        guard let entry = sockets.entry(id, worker: worker) else { throw .notBound(id) }
        guard let remote = destination ?? entry.remote else { throw .notConnected }
        guard remote.port != 0 else { throw .invalidDestination(remote) }
        guard payload.count <= UDP.maximumPayload else { throw .messageTooLong(payload.count, mtu: 65535) }
        let options = self.options.read(worker)[id] ?? UDPSocketOptions()
        // A connected socket's send reuses its route while it is current (sk_dst_check).
        let route: RouteResult, ttl: UInt8
        if destination == nil, let held = heldRoute(id, to: remote, tos: options.tos, worker: worker) {
            (route, ttl) = (held, options.ttl ?? ipv4.sysctls.read(worker).defaultTTL)
        } else {
            (route, ttl) = try outputRoute(to: remote.address, entry: entry, options: options, worker: worker)
            if destination == nil { holdRoute(route, for: id, to: remote, tos: options.tos, worker: worker) }
        }
        let source = ipv4.datagramSource(bound: entry.local.address, to: remote.address, route: route, worker: worker)
        if options.segmentSize > 0 && payload.count > options.segmentSize {
            unsafe try sendSegmented(payload, from: entry.local.port, source: source, to: remote, ttl: ttl, options: options,
                              route: route, worker: worker)
            return
        }
        let total = UDPHeader.length + payload.count
        if IPv4Header.minimumLength + total > Int(route.mtu) && options.pathMTUDiscovery == .do {
            throw .messageTooLong(payload.count, mtu: Int(route.mtu))
        }

        // udp_push_pending_frames: the header and its checksum over the caller's bytes — or,
        // for one packet to a device that offloads (`__ip_append_data`'s CHECKSUM_PARTIAL,
        // `udp4_hwcsum`), only the pseudo-header sum, for the device to complete.
        let partial = IPv4Header.minimumLength + total <= Int(route.mtu)
            && checksumOffloads.contains(ifindex: Int(route.outputIfindex))
        var header: UInt64 = 0
        unsafe withUnsafeMutableBytes(of: &header) { raw in
            let udp = unsafe UDPHeader(unchecked: raw.baseAddress!)
            udp.setFields(sourcePort: entry.local.port, destinationPort: remote.port, length: UInt16(total), checksum: 0)
            let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: remote.address, protocol: .udp,
                                                          length: total)
            if partial {
                udp.checksum = InternetChecksum.fold(pseudo)
                return
            }
            var sum = unsafe InternetChecksum.sum(raw.baseAddress!, count: UDPHeader.length, initial: pseudo)
            if let base = payload.baseAddress { sum = unsafe InternetChecksum.sum(base, count: payload.count, initial: sum) }
            let value = ~InternetChecksum.fold(sum)
            udp.checksum = value == 0 ? 0xFFFF : value
        }
        var failure: SocketError?
        unsafe withUnsafeBytes(of: &header) { headerBytes in
            do throws(SocketError) {
                unsafe try ipv4.appendData(header: headerBytes, payload: payload, source: source, destination: remote.address,
                                    protocol: .udp, ttl: ttl, tos: options.tos,
                                    pathMTUDiscovery: options.pathMTUDiscovery, route: route, worker: worker,
                                    partialChecksum: partial ? UDPHeader.checksumOffset : nil)
                statistics.block(worker).add(UDPStatistics.Counter.outDatagrams.rawValue)
            } catch {
                failure = error
            }
        }
        if let failure {
            statistics.block(worker).add(UDPStatistics.Counter.sndbufErrors.rawValue)
            throw failure
        }
    }
}

extension UDP {
    /// UDP_SEGMENT (Linux: `udp_send_skb` with `cork->gso_size`): `payload` as one GSO packet
    /// of `options.segmentSize`-byte segments — the IP header for the whole, the UDP header
    /// with the whole length and the pseudo-header checksum left partial (`CHECKSUM_PARTIAL`),
    /// `SKB_GSO_UDP_L4` — in a 64 KiB buffer; identifications reserved for every segment
    /// (`ip_select_ident_segs`). `ip_output` hands it on whole where the device segments
    /// (virtio-net header) and `dev_queue_xmit` segments it in software where it cannot (each
    /// segment then gets its own UDP length and full checksum). OutDatagrams counts segments.
    /// Throws `invalidSegmentSize` (a segment over the path MTU, or more than 64 segments),
    /// `noBufferSpace`.
    func sendSegmented(_ payload: UnsafeRawBufferPointer, from port: UInt16, source: IPv4Address, to remote: SocketAddress,
                       ttl: UInt8, options: UDPSocketOptions, route: RouteResult, worker: Worker) throws(SocketError) {
        let size = options.segmentSize
        let mtu = Int(route.mtu)
        let segments = (payload.count + size - 1) / size
        guard IPv4Header.minimumLength + UDPHeader.length + size <= mtu, segments <= 64 else {
            throw .invalidSegmentSize(size, mtu: mtu)
        }
        let state = ipv4.state(worker)
        let total = UDPHeader.length + payload.count
        guard let skb = state.largeCache(of: ipv4).allocate() else {
            statistics.block(worker).add(UDPStatistics.Counter.sndbufErrors.rawValue)
            throw .noBufferSpace
        }
        guard let ip = unsafe skb.put(IPv4Header.minimumLength + total) else {
            worker.cache.free(skb)
            statistics.block(worker).add(UDPStatistics.Counter.sndbufErrors.rawValue)
            throw .noBufferSpace
        }
        let identification = state.nextIdentification()
        state.identification &+= UInt16(truncatingIfNeeded: segments - 1)
        unsafe IPv4Repr(source: source, destination: remote.address, protocol: .udp, ttl: ttl, payloadLength: total,
                 identification: identification, dontFragment: options.pathMTUDiscovery != .dont,
                 dscp: options.tos >> 2, ecn: options.tos & 0x03).emit(to: ip, checksum: false)  // ip_local_out fills it
        let raw = unsafe ip + IPv4Header.minimumLength
        let udp = unsafe UDPHeader(unchecked: raw)
        udp.setFields(sourcePort: port, destinationPort: remote.port, length: UInt16(total),
                      checksum: InternetChecksum.fold(InternetChecksum.pseudoHeaderSum(
                          source: source, destination: remote.address, protocol: .udp, length: total)))
        if let base = payload.baseAddress { unsafe (raw + UDPHeader.length).copyMemory(from: base, byteCount: payload.count) }
        skb.gsoSize = size
        skb.gsoType = .udpL4
        unsafe skb.setPartialChecksum(header: raw, offset: UDPHeader.checksumOffset)
        route.apply(to: skb)
        skb.resetNetworkHeader()
        skb.setTransportHeader(afterNetworkBytes: IPv4Header.minimumLength)
        statistics.block(worker).add(UDPStatistics.Counter.outDatagrams.rawValue, UInt64(segments))
        withPacketBatch(capacity: 1) { batch in
            batch.append(skb)
            ipv4.ipLocalOut(&batch, worker: worker)
        }
    }
}
