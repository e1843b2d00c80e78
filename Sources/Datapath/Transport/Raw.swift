import DatapathCore
import DatapathWire
import Synchronization

/// What a raw socket's owner gets, on the worker that received them (Linux: `raw_rcv` →
/// `sock_queue_rcv_skb`): private copies of the matching packets in pool memory, `data` at the
/// IP header (an IPv4 raw socket reads the whole packet). Takes the skbs; returns how many it
/// refused for want of room, having dropped them itself.
public protocol RawReceiver: AnyObject, Sendable {
    func receive(_ packets: inout PacketBatch, socket: UInt32, worker: Worker) -> Int

    /// An error about something the socket sent: one the worker met sending (no route,
    /// EMSGSIZE), or an ICMP error (Linux: `raw_err`) — with `receiveErrors` every one, else
    /// only a hard one on a connected socket.
    func error(_ message: SocketErrorMessage, socket: UInt32, worker: Worker)
}

extension RawReceiver {
    public func error(_ message: SocketErrorMessage, socket: UInt32, worker: Worker) {}
}

/// Linux's `ICMP_FILTER` for ICMP raw sockets: a bit per ICMP type below 32; a set bit keeps
/// packets of that type from the socket (the others still get them).
public struct ICMPFilter: Hashable, Sendable {
    public var blockedTypes: UInt32

    public init(blockedTypes: UInt32 = 0) { self.blockedTypes = blockedTypes }

    /// Blocks every type in `types`.
    public init(blocking types: [ICMPType]) {
        blockedTypes = types.reduce(0) { $1.rawValue < 32 ? $0 | 1 << UInt32($1.rawValue) : $0 }
    }

    /// Passes only `types` (what ping sets: echo reply and the errors it reports).
    public init(passing types: [ICMPType]) {
        self.init(blockedTypes: ~ICMPFilter(blocking: types).blockedTypes)
    }

    @inline(__always)
    func blocks(_ type: ICMPType) -> Bool { type.rawValue < 32 && blockedTypes & 1 << UInt32(type.rawValue) != 0 }
}

/// How a raw socket sends (Linux: `IP_TTL`, `IP_TOS`, `IP_MTU_DISCOVER`, `IP_HDRINCL`,
/// `SO_BROADCAST`, `IP_MULTICAST_IF`, `IP_MULTICAST_TTL`, `IP_MULTICAST_LOOP`).
public struct RawSocketOptions: Sendable, Equatable {
    /// nil: the stack's default TTL.
    public var ttl: UInt8?
    public var tos: UInt8
    public var pathMTUDiscovery: PathMTUDiscovery
    /// May send to broadcast addresses (EACCES, `broadcastNotPermitted`, without it).
    public var broadcast = false
    /// The device multicast and limited broadcast leave by; 0: the route's.
    public var multicastInterface = 0
    /// The TTL of packets to a group (1: this link only).
    public var multicastTTL: UInt8 = 1
    /// A packet to a group joined on its device also comes back to this host (on by default).
    public var multicastLoop = true
    /// `IP_RECVERR`: every ICMP error about the socket's packets reaches it, with its details on
    /// the error queue (`RawSocket.receiveError()`).
    public var receiveErrors = false
    /// The caller writes the IP header (`IP_HDRINCL`): checked as `raw_send_hdrinc` does;
    /// the stack fills the total length, the checksum, an identification of 0 and a source of
    /// 0.0.0.0. Such a packet must fit the path MTU (it is not fragmented).
    public var headerIncluded: Bool

    public init(ttl: UInt8? = nil, tos: UInt8 = 0, pathMTUDiscovery: PathMTUDiscovery = .want,
                headerIncluded: Bool = false, broadcast: Bool = false, multicastInterface: Int = 0,
                multicastTTL: UInt8 = 1, multicastLoop: Bool = true, receiveErrors: Bool = false) {
        self.receiveErrors = receiveErrors
        self.multicastLoop = multicastLoop
        self.broadcast = broadcast
        self.multicastInterface = multicastInterface
        self.multicastTTL = multicastTTL
        self.ttl = ttl
        self.tos = tos
        self.pathMTUDiscovery = pathMTUDiscovery
        self.headerIncluded = headerIncluded
    }
}

/// Raw IPv4 sockets (Linux: `net/ipv4/raw.c`): the table of raw sockets, `raw_v4_input` —
/// every socket bound to a packet's protocol (and address, peer, device) gets a copy before
/// the protocol's own handler runs — and `raw_sendmsg`.
package final class RawIP: @unchecked Sendable {
    struct Binding {
        let id: UInt32
        let protocolNumber: UInt8
        let local: IPv4Address
        var remote: IPv4Address
        let ifindex: Int
        var filter: ICMPFilter
        var options: RawSocketOptions
        let receiver: any RawReceiver
    }

    unowned let ipv4: IPv4
    /// The sockets, read by workers without a lock (a copy per change: raw sockets are few).
    let bindings: Snapshot<[Binding]>
    let nextSocketID = Atomic<UInt32>(UInt32.max)

    init(ipv4: IPv4, workers: Int) {
        self.ipv4 = ipv4
        bindings = Snapshot([], workers: workers)
    }

    /// Opens raw socket `id` for `protocol` (Linux: `socket(AF_INET, SOCK_RAW, protocol)` and
    /// `bind`): it receives packets of that protocol to `local` (any of ours when zero), on
    /// device `ifindex` (any when 0). Throws `addressNotAvailable` for an address not ours,
    /// `alreadyBound` for an id in use.
    public func open(_ id: UInt32, protocol number: IPProtocol, local: IPv4Address = .zero, ifindex: Int = 0,
                     options: RawSocketOptions = RawSocketOptions(), receiver: any RawReceiver) throws(SocketError) {
        if !local.isZero && !local.isBroadcast && !local.isMulticast && !ipv4.addresses.isLocal(local) {
            throw .addressNotAvailable(local)
        }
        try bindings.update { (list: inout [Binding]) throws(SocketError) in
            if let existing = list.first(where: { $0.id == id }) {
                throw SocketError.alreadyBound(SocketAddress(existing.local, 0))
            }
            list.append(Binding(id: id, protocolNumber: number.rawValue, local: local, remote: .zero,
                                ifindex: ifindex, filter: ICMPFilter(), options: options, receiver: receiver))
        }
    }

    /// Sets (nil: clears) socket `id`'s peer: it receives only from it, and sends there by
    /// default (Linux: `connect` on a raw socket).
    public func connect(_ id: UInt32, to remote: IPv4Address?) {
        change(id) { $0.remote = remote ?? .zero }
    }

    /// Sets socket `id`'s `ICMP_FILTER`.
    public func setFilter(_ id: UInt32, _ filter: ICMPFilter) { change(id) { $0.filter = filter } }

    /// Replaces socket `id`'s send options.
    public func setOptions(_ id: UInt32, _ options: RawSocketOptions) { change(id) { $0.options = options } }

    func change(_ id: UInt32, _ body: (inout Binding) -> Void) {
        bindings.update { list in
            if let index = list.firstIndex(where: { $0.id == id }) { body(&list[index]) }
        }
    }

    /// Closes socket `id` (Linux: `raw_close` → `raw_unhash_sk`).
    public func close(_ id: UInt32) {
        bindings.update { $0.removeAll { $0.id == id } }
    }

    /// An id for a `RawSocket` (counting down from `UInt32.max`, away from small ids owners
    /// of the run-to-completion API pick).
    func allocateSocketID() -> UInt32 { nextSocketID.subtract(1, ordering: .relaxed).oldValue }

    /// Hands `error` to socket `id`'s receiver.
    func reportError(_ error: SocketError, socket id: UInt32, destination: IPv4Address? = nil, worker: Worker) {
        guard let binding = bindings.read(worker).first(where: { $0.id == id }) else { return }
        let message = SocketErrorMessage(local: error, destination: SocketAddress(destination ?? binding.remote, 0))
        binding.receiver.error(message, socket: id, worker: worker)
    }

    /// Linux: `raw_icmp_error` → `raw_err`, for an ICMP error quoting a packet of a protocol
    /// raw sockets are open for: each socket of that protocol whose bound address is the
    /// quoted source and whose peer (if connected) the quoted destination hears of it — with
    /// `receiveErrors` (`IP_RECVERR`) every error, queued with its details (the quote from the
    /// IP header with `headerIncluded`, else after it); without, a connected socket only the
    /// hard ones. Fragmentation needed is EMSGSIZE, soft under `IP_PMTUDISC_DONT`.
    func icmpError(type: ICMPType, code: ICMPCode, info: UInt32, quoted: IPv4Header, quotedLength: Int,
                   offender: IPv4Address, worker: Worker) {
        let number = quoted.protocol.rawValue
        let source = quoted.source, destination = quoted.destination
        for binding in bindings.read(worker) where binding.protocolNumber == number {
            guard binding.local.isZero || binding.local == source,
                  binding.remote.isZero || binding.remote == destination else { continue }
            let options = binding.options
            guard options.receiveErrors || !binding.remote.isZero else { continue }
            let start = options.headerIncluded ? 0 : quoted.headerLength
            guard let message = unsafe SocketErrorMessage.icmp(
                type: type, code: code, info: info, offender: offender, destination: SocketAddress(destination, 0),
                payload: UnsafeRawBufferPointer(start: quoted.base + start, count: max(0, quotedLength - start)),
                sentLength: Int(quoted.totalLength), pathMTUDiscovery: options.pathMTUDiscovery, raw: true) else { continue }
            guard options.receiveErrors || message.isHard else { continue }
            binding.receiver.error(message, socket: binding.id, worker: worker)
        }
    }

    // MARK: Receive

    /// Linux: `raw_local_deliver` → `raw_v4_input` → `raw_rcv`, for one packet with `data` at
    /// its IP header, before `ip_local_deliver_finish` gives it to the protocol's handler.
    /// Every socket whose protocol, bound address (the packet's destination), peer (its
    /// source), device and — for ICMP — filter match gets a private copy.
    /// Reads: the IP header, the ICMP type. Writes: nothing on `skb`. Next: each socket's
    /// `RawReceiver`. Drops (copies only): `.rawNoMemory` when no buffer is free for a copy,
    /// and what a receiver refuses (`.rawReceiveBufferFull` for a `RawSocket`).
    /// Returns whether any socket took the packet (then no protocol unreachable is due).
    func input(_ skb: SKB, sockets: [Binding], worker: Worker) -> Bool {
        let ip = unsafe IPv4Header(unchecked: skb.data)
        let number = ip.protocol.rawValue
        let source = ip.source, destination = ip.destination
        var delivered = false
        for binding in sockets where binding.protocolNumber == number {
            guard binding.local.isZero || binding.local == destination,
                  binding.remote.isZero || binding.remote == source,
                  binding.ifindex == 0 || binding.ifindex == skb.inputIfindex else { continue }
            if number == IPProtocol.icmp.rawValue {
                let headerLength = ip.headerLength
                guard skb.length > headerLength,
                      unsafe !binding.filter.blocks(ICMPHeader(unchecked: skb.data + headerLength).type) else { continue }
            }
            delivered = true
            guard let copy = privateCopy(of: skb, worker: worker) else {
                worker.drops.count(.rawNoMemory)
                continue
            }
            withPacketBatch(capacity: 1) { batch in
                batch.append(copy)
                _ = binding.receiver.receive(&batch, socket: binding.id, worker: worker)
                precondition(batch.isEmpty, "a RawReceiver must take the packets it is given")
            }
        }
        return delivered
    }

    /// The packet (from `data`, `length` bytes) in a buffer of its own — a 64 KiB one for a
    /// reassembled datagram longer than a pool buffer — with its input device and timestamp.
    func privateCopy(of skb: SKB, worker: Worker) -> SKB? {
        let copy = ipv4.allocateLarge(bytes: skb.length, worker: worker)
        guard let copy, let out = unsafe copy.put(skb.length) else {
            if let copy { worker.cache.free(copy) }
            return nil
        }
        unsafe out.copyMemory(from: skb.data, byteCount: skb.length)
        copy.resetNetworkHeader()
        unsafe copy.setTransportHeader(afterNetworkBytes: IPv4Header(unchecked: out).headerLength)
        copy.inputIfindex = skb.inputIfindex
        copy.timestamp = skb.timestamp
        return copy
    }

    // MARK: Send

    /// The largest packet a raw socket sends: 65535 bytes with the header.
    public static let maximumPacket = 65535

    /// Sends one packet from raw socket `id` to `destination` (nil: the connected peer)
    /// (Linux: `raw_sendmsg`). Without `headerIncluded`, `bytes` are the payload: the stack
    /// builds the IP header with the socket's protocol and sends it through `ip_append_data`
    /// (fragments when longer than the path and allowed to be). With it, `bytes` are a whole
    /// IP packet, checked as `raw_send_hdrinc` does — at least 20 bytes, a header length of 20
    /// or more within them — the total length, identification (when 0), source (when
    /// 0.0.0.0) and checksum filled in; it must fit the path MTU. Routed by `destination`.
    /// Throws `notBound`, `notConnected`, `invalidPacket`, `messageTooLong`, `noRoute`,
    /// `noBufferSpace`.
    public func send(_ bytes: UnsafeRawBufferPointer, from id: UInt32, to destination: IPv4Address? = nil,
                     worker: Worker) throws(SocketError) {
        guard let binding = bindings.read(worker).first(where: { $0.id == id }) else { throw .notBound(id) }
        let target = destination ?? (binding.remote.isZero ? nil : binding.remote)
        guard let target else { throw .notConnected }
        let options = binding.options
        let (route, ttl) = try ipv4.datagramRoute(to: target, tos: options.tos, boundIfindex: binding.ifindex,
                                                  multicastInterface: options.multicastInterface,
                                                  multicastLoop: options.multicastLoop, broadcast: options.broadcast,
                                                  ttl: options.ttl, multicastTTL: options.multicastTTL, worker: worker)
        let source = ipv4.datagramSource(bound: binding.local, to: target, route: route, worker: worker)
        let mtu = Int(route.mtu)
        if options.headerIncluded {
            unsafe try sendHeaderIncluded(bytes, source: source, route: route, worker: worker)
            return
        }
        guard IPv4Header.minimumLength + bytes.count <= RawIP.maximumPacket else {
            throw .messageTooLong(bytes.count, mtu: RawIP.maximumPacket)
        }
        if IPv4Header.minimumLength + bytes.count > mtu && options.pathMTUDiscovery == .do {
            throw .messageTooLong(bytes.count, mtu: mtu)
        }
        unsafe try ipv4.appendData(header: UnsafeRawBufferPointer(start: nil, count: 0), payload: bytes, source: source,
                            destination: target, protocol: IPProtocol(rawValue: binding.protocolNumber),
                            ttl: ttl, tos: options.tos,
                            pathMTUDiscovery: options.pathMTUDiscovery, route: route, worker: worker)
    }

    /// `raw_send_hdrinc`: the caller's header checked and completed, one skb, `ip_local_out`.
    func sendHeaderIncluded(_ bytes: UnsafeRawBufferPointer, source: IPv4Address, route: RouteResult,
                            worker: Worker) throws(SocketError) {
        guard bytes.count >= IPv4Header.minimumLength, let base = bytes.baseAddress else {
            throw .invalidPacket("shorter than an IPv4 header (\(bytes.count) bytes)")
        }
        let given = unsafe IPv4Header(unchecked: UnsafeMutableRawPointer(mutating: base))
        let headerLength = given.headerLength
        guard given.version == 4, headerLength >= IPv4Header.minimumLength,
              headerLength <= bytes.count else {
            throw .invalidPacket("not an IPv4 header of 20 bytes or more within the packet")
        }
        guard bytes.count <= RawIP.maximumPacket else { throw .messageTooLong(bytes.count, mtu: RawIP.maximumPacket) }
        guard bytes.count <= Int(route.mtu) else { throw .messageTooLong(bytes.count, mtu: Int(route.mtu)) }
        let skb = ipv4.allocateLarge(bytes: bytes.count, worker: worker)
        guard let skb, let out = unsafe skb.put(bytes.count) else {
            if let skb { worker.cache.free(skb) }
            throw .noBufferSpace
        }
        unsafe out.copyMemory(from: base, byteCount: bytes.count)
        let ip = unsafe IPv4Header(unchecked: out)
        ip.totalLength = UInt16(bytes.count)
        if ip.identification == 0 { ip.identification = ipv4.state(worker).nextIdentification() }
        if ip.source.isZero { ip.source = source }
        route.apply(to: skb)
        skb.resetNetworkHeader()
        skb.setTransportHeader(afterNetworkBytes: headerLength)
        if ip.protocol == .icmp && bytes.count > headerLength {
            unsafe ipv4.icmp.countOutput(ICMPHeader(unchecked: out + headerLength).type, worker: worker)
        }
        withPacketBatch(capacity: 1) { batch in
            batch.append(skb)
            ipv4.ipLocalOut(&batch, worker: worker)   // fills the header checksum
        }
    }
}
