import DatapathCore
import DatapathWire

/// A packet a raw socket received: the whole IPv4 packet, header first, as Linux's IPv4 raw
/// sockets read it, with where and when it arrived.
public struct RawDatagram: Sendable, Equatable {
    public var source: IPv4Address
    public var destination: IPv4Address
    /// The IP header and what follows it.
    public var packet: [UInt8]
    /// The interface it arrived on.
    public var interfaceIndex: Int
    /// When the device received it (nanoseconds of the device's clock; 0 when it gives none).
    public var timestamp: UInt64

    public init(source: IPv4Address, destination: IPv4Address, packet: [UInt8], interfaceIndex: Int = 0,
                timestamp: UInt64 = 0) {
        self.source = source
        self.destination = destination
        self.packet = packet
        self.interfaceIndex = interfaceIndex
        self.timestamp = timestamp
    }

    /// The bytes after the IP header (for ICMP: the ICMP message).
    public var payload: ArraySlice<UInt8> { packet[(Int(packet[0] & 0x0F) * 4)...] }

    /// The packet a queued skb holds (`data` at the IP header).
    init(_ skb: SKB) {
        let ip = unsafe IPv4Header(unchecked: skb.data)
        unsafe self.init(source: ip.source, destination: ip.destination, packet: Array(skb.payload),
                  interfaceIndex: skb.inputIfindex, timestamp: skb.timestamp)
    }
}

/// A raw IPv4 socket for app code (Linux: `socket(AF_INET, SOCK_RAW, protocol)`), at the async
/// level as `UDPSocket` is: it receives a copy of every packet of its protocol addressed to
/// the stack (filtered by its bound address, its peer, its device and, for ICMP, `icmpFilter`)
/// and sends packets of that protocol — the payload, or with `headerIncluded` whole packets.
/// What `ping` is built on. Under it, `RawIP` in the stack (`stack.raw`) and the same bounded
/// queues as `UDPSocket` (`SocketBuffers`); a full receive queue drops `.rawReceiveBufferFull`.
public final class RawSocket: @unchecked Sendable {
    public let id: UInt32
    public let protocolNumber: IPProtocol
    let raw: RawIP
    let buffers: SocketBuffers

    /// Opens a raw socket for `protocol` on `stack`'s started workers, receiving packets to
    /// `local` (any of the stack's addresses when zero) on `device` (any when 0).
    public init(_ stack: Stack, protocol number: IPProtocol, bind local: IPv4Address = .zero, device ifindex: Int = 0,
                options: RawSocketOptions = RawSocketOptions(),
                receiveBufferSize: Int = SocketBufferDefaults.receive,
                sendBufferSize: Int = SocketBufferDefaults.send) throws(SocketError) {
        let raw = stack.raw
        let id = raw.allocateSocketID()
        guard let home = stack.homeWorker(for: id) else { throw .stackNotRunning }
        self.id = id
        self.raw = raw
        protocolNumber = number
        let buffers = SocketBuffers(stack: stack, home: home, receiveBufferSize: receiveBufferSize,
                                    sendBufferSize: sendBufferSize) { [raw] batch, worker in
            RawSocket.transmit(&batch, raw: raw, id: id, worker: worker)
        }
        self.buffers = buffers
        buffers.errorQueue.enabled.store(options.receiveErrors, ordering: .relaxed)
        try raw.open(id, protocol: number, local: local, ifindex: ifindex, options: options, receiver: Delivery(buffers))
    }

    deinit { close() }

    /// Receives only from `remote` and sends there by default (nil: from and to anyone).
    public func connect(to remote: IPv4Address?) { raw.connect(id, to: remote) }

    /// `ICMP_FILTER`: the ICMP types the socket does not want (ICMP sockets only).
    public func setFilter(_ filter: ICMPFilter) { raw.setFilter(id, filter) }

    /// Replaces the send options (TTL, TOS, path MTU discovery, `IP_HDRINCL`, `IP_RECVERR`).
    public func setOptions(_ options: RawSocketOptions) {
        buffers.errorQueue.enabled.store(options.receiveErrors, ordering: .relaxed)
        if !options.receiveErrors { buffers.errorQueue.removeAll() }   // as Linux's IP_RECVERR 0 purges it
        raw.setOptions(id, options)
    }

    /// The oldest error the socket kept under `receiveErrors`, nil when none (Linux:
    /// `recvmsg(MSG_ERRQUEUE)`, which never waits); the pending error becomes the next one's.
    public func receiveError() -> SocketErrorMessage? { buffers.receiveError() }

    // MARK: Sending

    /// Sends a packet to `destination` (nil: the connected peer), waiting while the send buffer
    /// is full. Errors the worker meets later (no route, EMSGSIZE) are thrown by the next call.
    public func send(_ bytes: [UInt8], to destination: IPv4Address? = nil) async throws(SocketError) {
        try await buffers.send(bytes, tag: try sendTag(bytes.count, to: destination))
    }

    /// Queues a packet without waiting (`wouldBlock` when the send buffer is full).
    public func trySend(_ bytes: UnsafeRawBufferPointer, to destination: IPv4Address? = nil) throws(SocketError) {
        unsafe try buffers.trySend(bytes, tag: try sendTag(bytes.count, to: destination))
    }

    func sendTag(_ count: Int, to destination: IPv4Address?) throws(SocketError) -> (UInt64, UInt64) {
        try buffers.checkOpen()
        try buffers.throwPendingError()
        guard count <= RawIP.maximumPacket else { throw .messageTooLong(count, mtu: RawIP.maximumPacket) }
        return (destination.map { 1 << 63 | UInt64($0.hostOrder) } ?? 0, 0)
    }

    /// On the home worker: `raw_sendmsg` for each queued packet; the first failure becomes the
    /// pending error.
    static func transmit(_ batch: inout PacketBatch, raw: RawIP, id: UInt32, worker: Worker) {
        var failure: SocketError?
        for i in batch.indices {
            let skb = batch[i]
            let tag = skb.control0
            let destination = tag >> 63 != 0 ? IPv4Address(hostOrder: UInt32(truncatingIfNeeded: tag)) : nil
            do {
                unsafe try raw.send(skb.payload, from: id, to: destination, worker: worker)
            } catch {
                if failure == nil { failure = error }
            }
            worker.cache.free(skb)
        }
        batch.removeAll()
        if let failure { raw.reportError(failure, socket: id, worker: worker) }
    }

    // MARK: Receiving

    /// The next packet, waiting for one; a pending error first, `closed` once closed.
    public func receive() async throws(SocketError) -> RawDatagram {
        try await buffers.receive(RawDatagram.init)
    }

    /// The next packet if one is queued, else nil.
    public func tryReceive() throws(SocketError) -> RawDatagram? {
        try buffers.tryReceive(RawDatagram.init)
    }

    /// Unbinds, waits a grace period and frees what is queued both ways. Idempotent.
    public func close() {
        buffers.close { raw.close(id) }
    }

    /// What the workers do with the socket's copies: queue them for the reader.
    final class Delivery: RawReceiver, @unchecked Sendable {
        let buffers: SocketBuffers
        init(_ buffers: SocketBuffers) { self.buffers = buffers }

        func receive(_ packets: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
            buffers.queue(&packets, worker: worker, refusedAs: .rawReceiveBufferFull)
        }

        func error(_ message: SocketErrorMessage, socket: UInt32, worker: Worker) { buffers.report(message) }
    }
}
