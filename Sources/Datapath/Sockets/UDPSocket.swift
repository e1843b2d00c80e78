import DatapathCore
import DatapathWire
import Synchronization

/// A datagram as a reader gets it (SwiftNIO's `AddressedEnvelope`): who sent it, the bytes, and
/// the receive metadata a wildcard-bound server needs (Linux: `IP_PKTINFO`, `IP_RECVTTL`,
/// `IP_RECVTOS`, `SO_TIMESTAMPNS`).
public struct UDPDatagram: Sendable, Equatable {
    /// The sender.
    public var remote: SocketAddress
    public var payload: [UInt8]
    /// The address and port it was sent to (`ipi_addr`): the one to answer from.
    public var local: SocketAddress
    /// The interface it arrived on (`ipi_ifindex`).
    public var interfaceIndex: Int
    public var ttl: UInt8
    public var tos: UInt8
    /// When the device received it, in nanoseconds of the device's clock (the ring's
    /// `tp_sec`/`tp_nsec`: CLOCK_REALTIME); 0 when the device gives none.
    public var timestamp: UInt64

    public init(remote: SocketAddress, payload: [UInt8], local: SocketAddress = .any(), interfaceIndex: Int = 0,
                ttl: UInt8 = 0, tos: UInt8 = 0, timestamp: UInt64 = 0) {
        self.remote = remote
        self.payload = payload
        self.local = local
        self.interfaceIndex = interfaceIndex
        self.ttl = ttl
        self.tos = tos
        self.timestamp = timestamp
    }

    /// The datagram a received skb holds (`data` at the payload, headers set by `udp_rcv`).
    init(_ skb: SKB) {
        let ip = unsafe IPv4Header(unchecked: skb.networkHeader)
        unsafe self.init(remote: skb.udpRemote, payload: Array(skb.payload), local: skb.udpLocal,
                  interfaceIndex: Int(skb.inputIfindex), ttl: ip.ttl, tos: ip.typeOfService,
                  timestamp: skb.head.pointee.timestamp)
    }
}

/// A UDP socket for ordinary app code (the async level of DESIGN.md §10, in SwiftNIO's
/// `NIOAsyncChannel` shape): `send` from any task, waiting while the send buffer is full;
/// `receive`/`inbound` await datagrams. Under it, the workers that receive for the socket queue
/// its datagrams on a `SocketReceiveQueue` (bounded by the receive buffer: what does not fit is
/// counted as `RcvbufErrors` and dropped), and sends cross to the socket's home worker on a
/// `SocketSendQueue`, where `udp_sendmsg` runs. Packet apps that want the datagrams in place on
/// the worker use `UDP.open(_:local:receiver:)` (run-to-completion) instead.
///
/// The tasks that use a socket run wherever Swift runs them — by default the cooperative pool,
/// which blocking code elsewhere in the process can hold for seconds; a server beside such code
/// gives its task an executor of its own (`Task(executorPreference:)`).
///
/// Errors the worker meets after `send` returned (no route, a path MTU too small with `.do`, a
/// port unreachable on a connected socket) become the socket's pending error (Linux's
/// `sk_err`), thrown — once — by the next `send` or `receive`, as Linux returns it.
public final class UDPSocket: @unchecked Sendable {
    /// The socket's id in the stack's UDP table.
    public let id: UInt32
    /// The address it is bound to (the port chosen when 0 was asked; the address `connect`
    /// chose for a wildcard-bound socket), as `getsockname` gives it.
    public var local: SocketAddress { udp.sockets.entry(id)?.local ?? bound }
    /// The address bind gave.
    let bound: SocketAddress
    let udp: UDP
    let igmp: IGMP
    let buffers: SocketBuffers
    /// A corked datagram is being appended to (a send with `more`, or under `cork`): a send
    /// without a destination then joins it, as Linux's `up->pending` skips the address check.
    let appending = Atomic<Bool>(false)
    let corked = Atomic<Bool>(false)
    /// The groups this socket joined, (group, device), left at close.
    let memberships = Lock<[(IPv4Address, Int)]>([])

    /// Opens a socket bound to `local` (port 0: an ephemeral port), on `stack`'s started workers;
    /// `device` binds it to one interface (`SO_BINDTODEVICE`). Throws `stackNotRunning` before
    /// `Stack.start(on:)` or `attach`, or what the bind refuses (`addressInUse`, …).
    public init(_ stack: Stack, bind local: SocketAddress = .any(), device ifindex: Int = 0,
                options: InetHashTable.BindOptions = [], sendOptions: UDPSocketOptions = UDPSocketOptions(),
                receiveBufferSize: Int = SocketBufferDefaults.receive,
                sendBufferSize: Int = SocketBufferDefaults.send) throws(SocketError) {
        let udp = stack.udp
        let id = udp.allocateSocketID()
        guard let home = stack.homeWorker(for: id) else { throw .stackNotRunning }
        self.id = id
        self.udp = udp
        self.igmp = stack.igmp
        let buffers = SocketBuffers(stack: stack, home: home, receiveBufferSize: receiveBufferSize,
                                    sendBufferSize: sendBufferSize) { [udp] batch, worker in
            UDPSocket.transmit(&batch, udp: udp, id: id, worker: worker)
        }
        self.buffers = buffers
        buffers.errorQueue.enabled.store(sendOptions.receiveErrors, ordering: .relaxed)
        self.bound = try udp.open(id, local: local, ifindex: ifindex, options: options, sendOptions: sendOptions,
                                  receiver: Delivery(buffers))
    }

    deinit { close() }

    /// Sets (nil: clears) the default destination; a connected socket receives only from it
    /// (Linux: `connect` on a datagram socket). Routes once: throws `noRoute` when there is
    /// none, `broadcastNotPermitted` for a broadcast without SO_BROADCAST; a wildcard-bound
    /// socket becomes bound to the route's source address (`local` shows it).
    public func connect(to remote: SocketAddress?) throws(SocketError) {
        try buffers.checkOpen()
        try udp.connect(id, to: remote)
    }

    /// The peer set by `connect`, if any.
    public var remote: SocketAddress? { udp.sockets.entry(id)?.remote }

    /// Replaces the send options (TTL, TOS, path MTU discovery, broadcast, multicast,
    /// segment size, cork). Clearing `cork` sends what it held (as Linux's `UDP_CORK` 0) —
    /// or, when the send buffer is full just then, the next send does.
    public func setOptions(_ options: UDPSocketOptions) {
        buffers.errorQueue.enabled.store(options.receiveErrors, ordering: .relaxed)
        if !options.receiveErrors { buffers.errorQueue.removeAll() }   // as Linux's IP_RECVERR 0 purges it
        udp.setOptions(id, options)
        corked.store(options.cork, ordering: .relaxed)
        if !options.cork {
            appending.store(false, ordering: .relaxed)
            unsafe try? buffers.trySend(UnsafeRawBufferPointer(start: nil, count: 0), tag: (0, UDPSocket.pushOnly))
        }
    }

    /// The oldest error the socket kept under `receiveErrors` (`IP_RECVERR`), nil when none
    /// (Linux: `recvmsg(MSG_ERRQUEUE)`, which never waits): the ICMP type and code, who sent
    /// it, where the datagram was going and the quoted payload. The pending error becomes the
    /// next message's.
    public func receiveError() -> SocketErrorMessage? { buffers.receiveError() }

    /// The second tag word: `MSG_MORE` (bit 0); a marker that only pushes the corked datagram.
    static let more: UInt64 = 1
    static let pushOnly: UInt64 = 2

    /// Joins multicast `group` on `device` (0: the device the route to the group names)
    /// (Linux: `IP_ADD_MEMBERSHIP`): the stack lets the group's frames in, delivers its
    /// datagrams to the sockets bound to their port, and reports the membership with IGMPv3.
    /// Throws `notMulticast`, `noRoute` (no device for the group).
    public func join(group: IPv4Address, device ifindex: Int = 0) throws(SocketError) {
        try buffers.checkOpen()
        let device = try igmp.join(group, ifindex: ifindex)
        memberships.withLock { $0.append((group, device)) }
    }

    /// Leaves a group joined with `join` (Linux: `IP_DROP_MEMBERSHIP`); nothing if not joined.
    public func leave(group: IPv4Address, device ifindex: Int = 0) {
        let left = memberships.withLock { list -> (IPv4Address, Int)? in
            guard let index = list.firstIndex(where: { $0.0 == group && (ifindex == 0 || $0.1 == ifindex) }) else { return nil }
            return list.remove(at: index)
        }
        if let (group, device) = left { igmp.leave(group, ifindex: device) }
    }

    /// The receive buffer in bytes of true size (`SO_RCVBUF`).
    public var receiveBufferSize: Int {
        get { buffers.receiveQueue.size }
        set { buffers.receiveQueue.size = newValue }
    }

    /// The send buffer in bytes of true size (`SO_SNDBUF`).
    public var sendBufferSize: Int {
        get { buffers.sendQueue.size }
        set { buffers.sendQueue.size = newValue }
    }

    // MARK: Sending

    /// Sends one datagram to `destination` (nil: the connected peer), waiting while the send
    /// buffer is full (Linux: a blocking `sendto`). Returns once the datagram is queued for the
    /// worker. Throws at once what can be told here — `closed`, `notConnected`,
    /// `invalidDestination` (port 0), `messageTooLong` (over 65507 bytes), `noBufferSpace` — and
    /// a pending error from before.
    /// With `more` (Linux: `MSG_MORE`) the bytes wait for the rest of the datagram: the next
    /// sends append to it until one without `more` sends the whole (as under `UDP_CORK`).
    public func send(_ payload: UnsafeRawBufferPointer, to destination: SocketAddress? = nil,
                     more: Bool = false) async throws(SocketError) {
        unsafe try await buffers.send(payload, tag: try sendTag(payload.count, to: destination, more: more))
    }

    /// Sends `payload` (copied), as `send(_:to:more:)` with raw bytes.
    public func send(_ payload: [UInt8], to destination: SocketAddress? = nil, more: Bool = false) async throws(SocketError) {
        try await buffers.send(payload, tag: try sendTag(payload.count, to: destination, more: more))
    }

    /// Queues a datagram without waiting: throws `wouldBlock` when the send buffer is full
    /// (Linux: `MSG_DONTWAIT`).
    public func trySend(_ payload: UnsafeRawBufferPointer, to destination: SocketAddress? = nil) throws(SocketError) {
        unsafe try buffers.trySend(payload, tag: try sendTag(payload.count, to: destination))
    }

    /// The checks `udp_sendmsg` makes before it builds anything, and the destination as the
    /// skb's tag (0: the connected peer).
    func sendTag(_ count: Int, to destination: SocketAddress?, more: Bool = false) throws(SocketError) -> (UInt64, UInt64) {
        try buffers.checkOpen()
        try buffers.throwPendingError()
        guard count <= UDP.maximumPayload else { throw .messageTooLong(count, mtu: 65535) }
        let flags = more ? UDPSocket.more : 0
        let joining = appending.exchange(more || corked.load(ordering: .relaxed), ordering: .relaxed)
        guard let destination else {
            guard remote != nil || joining else { throw .notConnected }
            return (0, flags)
        }
        guard destination.port != 0 else { throw .invalidDestination(destination) }
        return (SKB.udpDestinationTag(destination), flags)
    }

    /// On the home worker: `udp_sendmsg` for a burst of queued datagrams, in place in the
    /// skbs the app's bytes were copied into (no second copy when they fit the path); the first
    /// failure becomes the socket's pending error (and SndbufErrors for a buffer shortage, as
    /// `send` counts it).
    static func transmit(_ batch: inout PacketBatch, udp: UDP, id: UInt32, worker: Worker) {
        if batch.indices.contains(where: { batch[$0].control1 != 0 }) {
            // Corking: each in turn, appended or pushed (the copying path).
            var failure: SocketError?
            for i in batch.indices {
                let skb = batch[i]
                do throws(SocketError) {
                    if skb.control1 == UDPSocket.pushOnly {
                        try udp.pushPending(id, worker: worker)
                    } else {
                        unsafe try udp.send(skb.payload, from: id, to: skb.udpDestination, more: skb.control1 & UDPSocket.more != 0,
                                     worker: worker)
                    }
                } catch {
                    if failure == nil { failure = error }
                }
                worker.cache.free(skb)
            }
            batch.removeAll()
            if let failure { udp.reportError(failure, socket: id, worker: worker) }
            return
        }
        do {
            if let error = try udp.send(&batch, from: id, worker: worker).error {
                udp.reportError(error, socket: id, worker: worker)
            }
        } catch {
            udp.reportError(error, socket: id, worker: worker)
        }
    }

    // MARK: Receiving

    /// The next datagram, waiting for one (Linux: a blocking `recvmsg`). Throws a pending error
    /// first (e.g. `connectionRefused` on a connected socket), `closed` once closed and drained.
    public func receive() async throws(SocketError) -> UDPDatagram {
        try await buffers.receive(UDPDatagram.init)
    }

    /// The next datagram if one is queued, else nil (Linux: `MSG_DONTWAIT`).
    public func tryReceive() throws(SocketError) -> UDPDatagram? {
        try buffers.tryReceive(UDPDatagram.init)
    }

    /// Waits for datagrams and hands up to `max` of them to `body` in place — `data` at the
    /// payload, the IP and UDP headers set, in pool memory — freeing them after it returns: the
    /// batched reader, with no allocation per datagram. Returns what `body` returned.
    public func receive<R>(max: Int = PacketBatch.maximumCount,
                           _ body: (inout PacketBatch) throws(SocketError) -> R) async throws(SocketError) -> R {
        try await buffers.receive(max: max, body)
    }

    /// Datagrams as they arrive, until the socket is closed (or an error is pending: the
    /// sequence then ends by throwing it).
    public var inbound: Inbound { Inbound(socket: self) }

    public struct Inbound: AsyncSequence, Sendable {
        public typealias Element = UDPDatagram
        public typealias Failure = SocketError
        let socket: UDPSocket

        public struct AsyncIterator: AsyncIteratorProtocol {
            let socket: UDPSocket
            public mutating func next() async throws(SocketError) -> UDPDatagram? {
                do {
                    return try await socket.receive()
                } catch .closed {
                    return nil
                }
            }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(socket: socket) }
    }

    /// Bytes of true size waiting in the receive queue.
    public var queuedReceiveBytes: Int { buffers.receiveQueue.queued }

    // MARK: Closing

    /// Unbinds the socket, waits until no worker can still deliver to it or send for it (a
    /// grace period), and frees what is queued both ways (Linux: `udp_lib_close`). Readers and
    /// writers waiting get `closed`. Idempotent; not from a worker's thread.
    public func close() {
        guard buffers.close(unbind: { udp.close(id) }) else { return }
        udp.corks.discard(id)   // after the grace period: nothing can append any more
        for (group, device) in memberships.withLock({ list in defer { list.removeAll() }; return list }) {
            igmp.leave(group, ifindex: device)
        }
    }

    /// What the workers do with the socket's datagrams: queue them for the reader.
    final class Delivery: UDPReceiver, @unchecked Sendable {
        let buffers: SocketBuffers

        init(_ buffers: SocketBuffers) { self.buffers = buffers }

        /// Linux: `udp_queue_rcv_skb` → `__udp_enqueue_schedule_skb`: out of ring memory, onto
        /// this worker's ring of the queue; over the receive buffer (or no buffer for the copy)
        /// → `.udpReceiveBufferFull`, returned as refused (UDP counts RcvbufErrors and InErrors).
        func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
            buffers.queue(&datagrams, worker: worker, refusedAs: .udpReceiveBufferFull)
        }

        func error(_ message: SocketErrorMessage, socket: UInt32, worker: Worker) { buffers.report(message) }
    }
}
