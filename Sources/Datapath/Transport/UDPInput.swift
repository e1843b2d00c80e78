import DatapathCore
import DatapathWire
import Synchronization

/// What a bound UDP socket's owner gets, on the worker that received them (the first shape of
/// #12's run-to-completion API): datagrams with `data` at the payload, the network and
/// transport headers set (addresses and ports are there), in place in ring memory for the
/// duration of the call. It takes the skbs: frees them, or moves them out of the ring
/// (`PoolCache.detachFromRing`) to keep them.
public protocol UDPReceiver: AnyObject, Sendable {
    /// Returns how many of the datagrams it could not take for want of room (Linux: a full
    /// receive queue), having dropped them itself: UDP counts those as RcvbufErrors and
    /// InErrors, the rest as InDatagrams.
    func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int

    /// An error about a datagram the socket sent (Linux: `sk_err` and `sk_error_report`, as
    /// `recv` returns it, and with `IP_RECVERR` the details `recvmsg(MSG_ERRQUEUE)` reads):
    /// an ICMP error — without `receiveErrors` only a hard one on a connected socket — or a
    /// failure the worker met sending for the socket. The default ignores it.
    func error(_ message: SocketErrorMessage, socket: UInt32, worker: Worker)
}

extension UDPReceiver {
    public func error(_ message: SocketErrorMessage, socket: UInt32, worker: Worker) {}
}

/// UDP (Linux: `net/ipv4/udp.c`): the socket table, the receivers of bound sockets, the `Udp:`
/// counters, and the receive path registered as IP protocol 17.
public final class UDP: IPProtocolHandler, @unchecked Sendable {
    unowned let ipv4: IPv4
    public let sockets: InetHashTable
    public let statistics: UDPStatistics
    /// Socket id → its receiver; changed by `open`/`close`, read by workers without a lock.
    let receivers: Snapshot<[UInt32: any UDPReceiver]>
    /// Socket id → its send options.
    let options: Snapshot<[UInt32: UDPSocketOptions]>
    public let receiveStage = StageID.named("udp-rcv")
    let nextSocketID = Atomic<UInt32>(UInt32.max)
    /// Corked datagrams (UDP_CORK, MSG_MORE).
    let corks: UDPCorks
    /// Each worker's routes of connected sockets (`sk_dst_cache`).
    let connectedRoutes: WorkerLocal<ConnectedRoutes>
    /// Which devices complete partial checksums, read per datagram sent.
    let checksumOffloads: ChecksumOffloadFlags

    init(ipv4: IPv4, workers: Int) {
        self.ipv4 = ipv4
        checksumOffloads = ipv4.core.checksumOffloadFlags
        connectedRoutes = WorkerLocal(workers: max(1, workers)) { _ in ConnectedRoutes() }
        corks = UDPCorks(pool: { [unowned ipv4] in ipv4.sharedLargePool() })
        sockets = InetHashTable(workers: workers)
        statistics = UDPStatistics(workers: workers)
        receivers = Snapshot([:], workers: workers)
        options = Snapshot([:], workers: workers)
    }

    /// Binds socket `id` to `local` and has `receiver` take what arrives for it (Linux:
    /// `inet_bind` + the socket's receive path). Returns the address bound (port 0 picks one).
    @discardableResult
    public func open(_ id: UInt32, local: SocketAddress, ifindex: Int = 0, options: InetHashTable.BindOptions = [],
                     sendOptions: UDPSocketOptions = UDPSocketOptions(),
                     receiver: any UDPReceiver) throws(SocketError) -> SocketAddress {
        if !local.address.isZero && !local.address.isBroadcast && !local.address.isMulticast
            && !ipv4.addresses.isLocal(local.address) {
            throw .addressNotAvailable(local.address)
        }
        // Bound first: a refused bind (the id in use, the address taken) changes nothing.
        let bound = try sockets.bind(id, to: local, ifindex: ifindex, options: options)
        self.options.update { $0[id] = sendOptions }
        receivers.update { $0[id] = receiver }
        return bound
    }

    /// Connects socket `id` to `remote` — its default destination, and the only source it
    /// receives from — or, with nil, disconnects it (Linux: `ip4_datagram_connect`,
    /// `__udp_disconnect`). Routes once: no route (or a blackhole, unreachable or prohibit
    /// route) throws `noRoute`, a broadcast without `broadcast` (SO_BROADCAST) throws
    /// `broadcastNotPermitted`, and a wildcard-bound socket becomes bound to the source
    /// address the route gives (`inet_saddr`), as `getsockname` then shows. The workers keep
    /// the route per connected socket and revalidate it on each send (`sk_dst_check`).
    /// Throws `notBound` for an unknown id.
    public func connect(_ id: UInt32, to remote: SocketAddress?) throws(SocketError) {
        guard let entry = sockets.entry(id) else { throw .notBound(id) }
        guard let remote else {
            sockets.connect(id, to: nil)
            return
        }
        let options = options.value[id] ?? UDPSocketOptions()
        let destination = remote.address
        var source = IPv4Address.zero
        if destination.isMulticast || destination.isBroadcast {
            if destination.isBroadcast && !options.broadcast { throw .broadcastNotPermitted(destination) }
            let oif = options.multicastInterface != 0 ? options.multicastInterface : entry.ifindex
            let ifindex = oif != 0 ? oif : ipv4.fib.lookup(destination)?.ifindex ?? 0
            guard ifindex != 0 else { throw .noRoute(destination) }
            source = ipv4.addresses.sourceAddress(for: destination, ifindex: ifindex)
        } else {
            guard let route = ipv4.fib.lookup(destination),
                  route.type == .unicast || route.type == .local || route.type == .broadcast else {
                throw .noRoute(destination)
            }
            if route.type == .broadcast && !options.broadcast { throw .broadcastNotPermitted(destination) }
            source = route.type == .local ? destination
                : ipv4.addresses.sourceAddress(for: destination, ifindex: route.ifindex)
        }
        sockets.connect(id, to: remote, source: source)
    }

    /// Replaces socket `id`'s send options.
    public func setOptions(_ id: UInt32, _ sendOptions: UDPSocketOptions) {
        options.update { $0[id] = sendOptions }
    }

    /// An id no `UDPSocket` has taken: they count down from `UInt32.max`, so ids an owner of
    /// the run-to-completion API picks (small numbers) do not meet them.
    func allocateSocketID() -> UInt32 {
        nextSocketID.subtract(1, ordering: .relaxed).oldValue
    }

    /// Hands `error` to socket `id`'s receiver (its pending error, for a `UDPSocket`): for
    /// errors met on the worker after the app's call returned.
    func reportError(_ error: SocketError, socket id: UInt32, destination: SocketAddress? = nil, worker: Worker) {
        let to = destination ?? sockets.entry(id)?.remote ?? .any()
        receivers.read(worker)[id]?.error(SocketErrorMessage(local: error, destination: to), socket: id, worker: worker)
    }

    /// Unbinds socket `id` (Linux: `udp_lib_unhash` at close).
    public func close(_ id: UInt32) {
        sockets.close(id)
        corks.discard(id)   // after the unhash: a send still under way finds no entry
        receivers.update { $0[id] = nil }
        options.update { $0[id] = nil }
    }

    /// Linux: `udp_rcv` → `__udp4_lib_rcv`, for a batch with `data` at the UDP header.
    ///
    /// Reads: the UDP header, the IPv4 addresses, the route's broadcast flag. Writes: trims
    /// the skb to the UDP length; `data` to the payload for the receiver.
    /// Next: the bound socket's `UDPReceiver` (InDatagrams; what it refuses, RcvbufErrors).
    /// Drops: `.udpHeaderInvalid` (shorter than 8 bytes, or a length field that does not fit:
    /// InErrors), `.udpChecksum` (InCsumErrors, InErrors; a checksum the ring marked verified
    /// or left partial is trusted, 0 means none was sent, RFC 768), `.udpNoSocket` (unicast: NoPorts and ICMP
    /// port unreachable through `icmp_send`; broadcast or multicast: IgnoredMulti, no ICMP).
    public func receive(_ batch: inout PacketBatch, worker: Worker) {
        let start = cycleCount()
        let packets = batch.count
        let counters = statistics.block(worker)
        let dsts = ipv4.state(worker).dsts
        // Runs of up to 128 datagrams: slots on the stack (1 KiB, within what
        // `withUnsafeTemporaryAllocation` keeps off the heap), flushed when full.
        withPacketBatch(capacity: UDP.runCapacity) { run in
            var runSocket: UInt32?
            var runReceiver: (any UDPReceiver)?
            func flush() {
                guard let receiver = runReceiver, !run.isEmpty else { return }
                let count = run.count
                let refused = receiver.receive(&run, socket: runSocket!, worker: worker)
                if !run.isEmpty { worker.drop(&run, .notSpecified) }
                counters.add(UDPStatistics.Counter.inDatagrams.rawValue, UInt64(count &- refused))
                if refused > 0 {
                    counters.add(UDPStatistics.Counter.rcvbufErrors.rawValue, UInt64(refused))
                    counters.add(UDPStatistics.Counter.inErrors.rawValue, UInt64(refused))
                }
            }
            let receivers = self.receivers.read(worker)
            // The last port's sockets: a server's datagrams share a port, so one table probe
            // serves a run of them.
            var lastPort: UInt16?
            var portSockets: [InetHashTable.Entry]?
            for i in batch.indices {
                let skb = batch[i]
                guard let udp = unsafe UDPHeader(skb.data, length: skb.length) else {
                    counters.add(UDPStatistics.Counter.inErrors.rawValue)
                    worker.drop(skb, .udpHeaderInvalid)
                    continue
                }
                let length = Int(udp.length)
                guard length >= UDPHeader.length && length <= skb.length else {
                    counters.add(UDPStatistics.Counter.inErrors.rawValue)
                    worker.drop(skb, .udpHeaderInvalid)
                    continue
                }
                if length < skb.length { skb.trim(to: length) }
                let ip = unsafe IPv4Header(unchecked: skb.networkHeader)
                // Verified by the device, or still partial (a local sender's offload: the field
                // holds only the pseudo-header sum, and Linux trusts it, `skb_csum_unnecessary`).
                if skb.checksumState == .none && !udp.isChecksumValid(source: ip.source, destination: ip.destination) {
                    counters.add(UDPStatistics.Counter.inCsumErrors.rawValue)
                    counters.add(UDPStatistics.Counter.inErrors.rawValue)
                    worker.drop(skb, .udpChecksum)
                    continue
                }
                let multi = dsts[skb.dst].flags.contains(.broadcast) || ip.destination.isMulticast
                if multi {
                    flush()
                    runReceiver = nil
                    runSocket = nil
                    deliverToAll(skb, udp: udp, ip: ip, receivers: receivers, counters: counters, worker: worker)
                    continue
                }
                let port = udp.destinationPort
                if port != lastPort {
                    portSockets = sockets.sockets(port: port, worker: worker)
                    lastPort = port
                }
                var found: UInt32?
                if portSockets != nil {
                    found = unsafe InetHashTable.select(portSockets.unsafelyUnwrapped, source: SocketAddress(ip.source, udp.sourcePort),
                                                 destination: SocketAddress(ip.destination, port),
                                                 ifindex: skb.inputIfindex, hash: skb.hash)
                }
                // The run's receiver is looked up (and its existential copied, a retain) only
                // when the socket changes, not per datagram.
                if let socket = found, socket == runSocket {
                    if run.isFull { flush() }
                } else if let socket = found, let receiver = receivers[socket] {
                    flush()
                    runSocket = socket
                    runReceiver = receiver
                } else {
                    counters.add(UDPStatistics.Counter.noPorts.rawValue)
                    ipv4.icmp.sendError(for: skb, type: .destinationUnreachable,
                                        code: ICMPCode.DestinationUnreachable.port, worker: worker)
                    worker.drop(skb, .udpNoSocket)
                    continue
                }
                unsafe skb.setTransportHeader(afterNetworkBytes: skb.data - skb.networkHeader)
                _ = unsafe skb.pull(UDPHeader.length)
                run.append(skb)
            }
            batch.removeAll()
            flush()
        }
        worker.stages.record(receiveStage, packets: packets, cycles: cycleCount() &- start)
    }
}

extension UDP {
    /// Linux: `__udp4_lib_mcast_deliver`: a broadcast or multicast datagram (`data` at its UDP
    /// header, checked) to every matching socket — a clone each but the last, which gets the
    /// skb (receivers only read: a `UDPSocket` copies a shared skb out before queueing it).
    /// None: IgnoredMulti and `.udpNoSocket`, no ICMP. InDatagrams per delivery; a clone the
    /// pool cannot give is counted as RcvbufErrors and InErrors (`.udpReceiveBufferFull`).
    func deliverToAll(_ skb: SKB, udp: UDPHeader, ip: IPv4Header, receivers: [UInt32: any UDPReceiver],
                      counters: CounterBlock, worker: Worker) {
        let source = SocketAddress(ip.source, udp.sourcePort)
        let destination = SocketAddress(ip.destination, udp.destinationPort)
        var matches = 0
        sockets.forEachMatch(source: source, destination: destination, ifindex: skb.inputIfindex, worker: worker) { socket in
            if receivers[socket] != nil { matches += 1 }
        }
        guard matches > 0 else {
            counters.add(UDPStatistics.Counter.ignoredMulti.rawValue)
            worker.drop(skb, .udpNoSocket)
            return
        }
        unsafe skb.setTransportHeader(afterNetworkBytes: skb.data - skb.networkHeader)
        _ = unsafe skb.pull(UDPHeader.length)
        var left = matches
        sockets.forEachMatch(source: source, destination: destination, ifindex: skb.inputIfindex, worker: worker) { socket in
            guard let receiver = receivers[socket], left > 0 else { return }
            left -= 1
            guard let copy = left == 0 ? skb : worker.cache.clone(skb) else {
                worker.drops.count(.udpReceiveBufferFull)
                counters.add(UDPStatistics.Counter.rcvbufErrors.rawValue)
                counters.add(UDPStatistics.Counter.inErrors.rawValue)
                return
            }
            withPacketBatch(capacity: 1) { one in
                one.append(copy)
                let refused = receiver.receive(&one, socket: socket, worker: worker)
                if !one.isEmpty { worker.drop(&one, .notSpecified) }
                counters.add(UDPStatistics.Counter.inDatagrams.rawValue, UInt64(1 &- refused))
                if refused > 0 {
                    counters.add(UDPStatistics.Counter.rcvbufErrors.rawValue)
                    counters.add(UDPStatistics.Counter.inErrors.rawValue)
                }
            }
        }
        if left > 0 { worker.cache.free(skb) }   // a socket closed between the two walks
    }

    /// Linux: `udp_err` → `__udp4_lib_err`: an ICMP error quoting a datagram we sent reaches its
    /// socket, found as the datagram's reply would find it. The error is Linux's
    /// (`SocketErrorMessage.convert`: port unreachable → `connectionRefused`, fragmentation
    /// needed → `messageTooLong` with the MTU — the path MTU itself is learned by ICMP —,
    /// parameter problem → `protocolError`, the rest `unreachable`, each with its errno). A
    /// socket with `receiveErrors` (`IP_RECVERR`) gets every one, connected or not, with the
    /// offender and the quoted payload for its error queue (`ip_icmp_error`); without, only
    /// the hard ones, and only when connected.
    public func icmpError(type: ICMPType, code: ICMPCode, info: UInt32, quoted: IPv4Header, quotedLength: Int,
                          offender: IPv4Address, worker: Worker) {
        let udp = unsafe UDPHeader(unchecked: quoted.payload)
        let local = SocketAddress(quoted.source, udp.sourcePort)
        let remote = SocketAddress(quoted.destination, udp.destinationPort)
        guard let socket = sockets.lookup(source: remote, destination: local, ifindex: 0, hash: 0, worker: worker),
              let entry = sockets.entry(socket),
              let receiver = receivers.read(worker)[socket] else { return }
        let options = options.read(worker)[socket] ?? UDPSocketOptions()
        let start = quoted.headerLength + UDPHeader.length
        let sent = Int(quoted.totalLength) - start
        guard let message = unsafe SocketErrorMessage.icmp(
            type: type, code: code, info: info, offender: offender, destination: remote,
            payload: UnsafeRawBufferPointer(start: quoted.base + start, count: max(0, quotedLength - start)),
            sentLength: sent, pathMTUDiscovery: options.pathMTUDiscovery) else { return }
        if !options.receiveErrors { guard message.isHard, entry.remote != nil else { return } }
        receiver.error(message, socket: socket, worker: worker)
    }
}
