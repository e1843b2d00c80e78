import DatapathCore
import DatapathWire
import Synchronization

/// The sockets' corked datagrams (Linux: `up->pending` with the skbs `ip_append_data` queued
/// on `sk_write_queue`, and `inet->cork`): per socket, the destination of its first piece and
/// the bytes so far, gathered in a 64 KiB pool buffer. One lock for all (corking is not the
/// fast path), so that `close` can free a socket's pending datagram from any thread; the
/// buffers come from a cache of the stack's 64 KiB pool used only under the lock.
final class UDPCorks: @unchecked Sendable {
    struct Pending {
        let destination: SocketAddress
        let buffer: SKB
    }
    struct State: ~Copyable {
        var pending: [UInt32: Pending] = [:]
        var cache: PoolCache?
    }
    let state = Lock(State())
    /// How many sockets have a pending datagram: the batch send's check, without the lock.
    let count = Atomic<Int>(0)
    let pool: () -> PacketPool

    init(pool: @escaping () -> PacketPool) { self.pool = pool }

    /// Frees socket `id`'s pending datagram, if any; true when there was one.
    @discardableResult
    func discard(_ id: UInt32) -> Bool {
        guard let pending = take(id) else { return false }
        free(pending.buffer)
        return true
    }

    /// Whether socket `id` has a pending datagram (one relaxed load when none has).
    func isPending(_ id: UInt32) -> Bool {
        count.load(ordering: .relaxed) > 0 && state.withLock { $0.pending[id] != nil }
    }

    /// Takes socket `id`'s pending datagram out.
    func take(_ id: UInt32) -> Pending? {
        state.withLock { state in
            let pending = state.pending.removeValue(forKey: id)
            if pending != nil { count.subtract(1, ordering: .relaxed) }
            return pending
        }
    }

    /// Gives a buffer taken out of `pending` back (and the cache's spares to the pool).
    func free(_ buffer: SKB) {
        state.withLock { state in
            state.cache?.free(buffer)
            state.cache?.drainAll()
        }
    }
}

extension UDP {
    /// `udp_sendmsg` with `MSG_MORE` or under `UDP_CORK`: appends `payload` to socket `id`'s
    /// pending datagram (Linux: `ip_append_data` onto the cork), the first piece fixing the
    /// destination (later ones' are ignored, as Linux ignores them); when neither `more` nor
    /// the socket's cork holds it back, pushes the whole as one datagram
    /// (`udp_push_pending_frames`): one UDP header and checksum over every piece, fragments as
    /// for one send. Throws what `send` throws; `messageTooLong` when the pieces pass 65507
    /// bytes (the pending datagram is dropped then, as Linux's `ip_flush_pending_frames`).
    public func send(_ payload: UnsafeRawBufferPointer, from id: UInt32, to destination: SocketAddress? = nil,
                     more: Bool, worker: Worker) throws(SocketError) {
        let options = self.options.read(worker)[id] ?? UDPSocketOptions()
        let holding = more || options.cork
        guard holding || corks.isPending(id) else {
            unsafe try send(payload, from: id, to: destination, worker: worker)
            return
        }
        guard let entry = sockets.entry(id) else { throw .notBound(id) }
        let peer = destination ?? entry.remote
        // Whether a pending datagram exists is decided under the lock (a push on another path
        // may have taken it since the check above): a new one needs a destination.
        enum Outcome { case appended, noBuffer, noDestination, invalid(SocketAddress), tooLong(Int) }
        let outcome = corks.state.withLock { state -> Outcome in
            if state.pending[id] == nil {
                guard let peer else { return .noDestination }
                guard peer.port != 0 else { return .invalid(peer) }
                if state.cache == nil { state.cache = corks.pool().makeCache(capacity: 4, batch: 1) }
                guard let buffer = state.cache!.allocate() else { return .noBuffer }
                state.pending[id] = UDPCorks.Pending(destination: peer, buffer: buffer)
                corks.count.add(1, ordering: .relaxed)
            }
            let buffer = state.pending[id]!.buffer
            let length = buffer.length + payload.count
            guard length <= UDP.maximumPayload, let out = unsafe buffer.put(payload.count) else { return .tooLong(length) }
            if let base = payload.baseAddress { unsafe out.copyMemory(from: base, byteCount: payload.count) }
            return .appended
        }
        switch outcome {
        case .appended: break
        case .noBuffer:
            statistics.block(worker).add(UDPStatistics.Counter.sndbufErrors.rawValue)
            throw .noBufferSpace
        case .noDestination: throw .notConnected
        case .invalid(let address): throw .invalidDestination(address)
        case .tooLong(let length):
            corks.discard(id)
            throw .messageTooLong(length, mtu: 65535)
        }
        if !holding { try pushPending(id, worker: worker) }
    }

    /// Sends socket `id`'s pending datagram, if it has one (Linux: `udp_push_pending_frames`,
    /// as clearing `UDP_CORK` does).
    package func pushPending(_ id: UInt32, worker: Worker) throws(SocketError) {
        // Taken out first: a close meanwhile finds nothing to free under the send.
        guard let pending = corks.take(id) else { return }
        defer { corks.free(pending.buffer) }
        unsafe try send(pending.buffer.payload, from: id, to: pending.destination, worker: worker)
    }
}
