import DatapathCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What every datagram socket of the async level has (Linux: the `struct sock` part that
/// `sock_queue_rcv_skb`, `sock_alloc_send_skb`, `sk_err` and `sk_wait_data` work on): the
/// bounded receive queue the workers fill, the bounded send queue to the home worker, the
/// pending error, and the close that waits a grace period. `UDPSocket` and `RawSocket` are
/// their protocol's addressing over one of these.
/// The buffer sizes a socket gets unless it asks (Linux: `net.core.rmem_default` and
/// `wmem_default`, 212 992 bytes each).
public enum SocketBufferDefaults {
    public static let receive = 212_992
    public static let send = 212_992
}

final class SocketBuffers: @unchecked Sendable {
    let receiveQueue: SocketReceiveQueue
    let sendQueue: SocketSendQueue
    let quiescence: Quiescence
    /// The socket's pending error (Linux: `sk_err`).
    let pendingError = Lock<SocketError?>(nil)
    /// The details `IP_RECVERR` keeps (Linux: `sk_error_queue`).
    let errorQueue = SocketErrorQueue()
    let isOpen = Atomic<Bool>(true)

    init(stack: Stack, home: Worker, receiveBufferSize: Int, sendBufferSize: Int,
         transmit: @escaping SocketSendQueue.Transmit) {
        quiescence = stack.core.quiescence
        receiveQueue = SocketReceiveQueue(workers: stack.workerCount, size: receiveBufferSize, pool: home.pool)
        sendQueue = SocketSendQueue(worker: home, size: sendBufferSize, pool: home.pool,
                                    largePool: stack.ipv4.sharedLargePool(), transmit: transmit)
    }

    // MARK: Workers

    /// `sock_queue_rcv_skb`: copies the skbs out of ring memory onto this worker's ring of the
    /// receive queue; what does not fit (over the buffer, or no buffer for the copy) is
    /// dropped as `reason`. Returns how many were refused. The batch ends empty.
    func queue(_ batch: inout PacketBatch, worker: Worker, refusedAs reason: DropReason) -> Int {
        var refused = 0
        for i in batch.indices {
            guard let skb = worker.cache.detachFromRing(batch[i]) else {
                worker.drops.count(reason)
                refused += 1
                continue
            }
            if !receiveQueue.enqueue(skb, worker: worker) {
                worker.drop(skb, reason)
                refused += 1
            }
        }
        batch.removeAll()
        receiveQueue.dataReady()
        return refused
    }

    /// Records an error for the app (`sk_err` + `sk_error_report`: wakes readers).
    func report(_ error: SocketError) {
        pendingError.withLock { $0 = error }
        receiveQueue.dataReady()
    }

    /// An error about something the socket sent: with `IP_RECVERR` an ICMP error, or EMSGSIZE
    /// met sending (`ip_local_error`), is queued with its details; every one becomes the
    /// pending error.
    func report(_ message: SocketErrorMessage) {
        if errorQueue.enabled.load(ordering: .relaxed) && (message.origin == .icmp || message.errno == .messageTooLong) {
            errorQueue.enqueue(message)
        }
        report(message.error)
    }

    // MARK: The app

    /// The oldest message of the error queue (Linux: `recvmsg(MSG_ERRQUEUE)`, which never
    /// waits); the pending error becomes the next message's, or none.
    func receiveError() -> SocketErrorMessage? {
        guard let (message, next) = errorQueue.dequeue() else { return nil }
        pendingError.withLock { $0 = next }
        return message
    }

    func checkOpen() throws(SocketError) {
        guard isOpen.load(ordering: .relaxed) else { throw .closed }
    }

    func throwPendingError() throws(SocketError) {
        if let error = pendingError.withLock({ error -> SocketError? in defer { error = nil }; return error }) {
            throw error
        }
    }

    /// Queues `bytes` for the worker tagged `tag`, waiting for room while the send buffer is
    /// full (`sock_alloc_send_skb` sleeping in `sock_wait_for_wmem`).
    func send(_ bytes: UnsafeRawBufferPointer, tag: (UInt64, UInt64)) async throws(SocketError) {
        while unsafe try !sendQueue.enqueue(bytes, tag: tag) {
            await sendQueue.waitForRoom()
            try checkOpen()
        }
    }

    /// As `send`, copying `bytes` first (they may not be borrowed across the wait).
    func send(_ bytes: [UInt8], tag: (UInt64, UInt64)) async throws(SocketError) {
        while unsafe try !bytes.withUnsafeBytes({ raw in
            Result { () throws(SocketError) in unsafe try sendQueue.enqueue(raw, tag: tag) }
        }).get() {
            await sendQueue.waitForRoom()
            try checkOpen()
        }
    }

    /// Queues without waiting: `wouldBlock` when the send buffer is full (`MSG_DONTWAIT`).
    func trySend(_ bytes: UnsafeRawBufferPointer, tag: (UInt64, UInt64)) throws(SocketError) {
        guard unsafe try sendQueue.enqueue(bytes, tag: tag) else { throw .wouldBlock }
    }

    /// The next queued skb made into a value by `convert`, or nil when none is queued.
    func tryReceive<T>(_ convert: (SKB) -> T) throws(SocketError) -> T? {
        try throwPendingError()
        return withPacketBatch(capacity: 1) { batch in
            guard receiveQueue.dequeue(into: &batch, max: 1) == 1 else { return nil }
            let value = convert(batch[0])
            receiveQueue.release(&batch)
            return value
        }
    }

    /// The next queued skb made into a value, waiting for one (a blocking `recvmsg`); a pending
    /// error first, `closed` once closed and drained.
    func receive<T>(_ convert: (SKB) -> T) async throws(SocketError) -> T {
        while true {
            if let value = try tryReceive(convert) { return value }
            await waitForData()
            try throwPendingError()
            if receiveQueue.isClosed && receiveQueue.isEmpty { throw .closed }
        }
    }

    /// Up to `max` queued skbs handed to `body` in place, waiting for some; freed afterwards.
    func receive<R>(max: Int, _ body: (inout PacketBatch) throws(SocketError) -> R) async throws(SocketError) -> R {
        while true {
            try throwPendingError()
            let result = withPacketBatch(capacity: Swift.min(max, PacketBatch.maximumCount)) {
                (batch: inout PacketBatch) -> Result<R, SocketError>? in
                guard receiveQueue.dequeue(into: &batch) > 0 else { return nil }
                defer { receiveQueue.release(&batch) }
                return Result { () throws(SocketError) -> R in try body(&batch) }
            }
            if let result { return try result.get() }
            if receiveQueue.isClosed { throw .closed }
            await waitForData()
        }
    }

    /// Returns when something may be queued, an error is pending, or the socket closed.
    func waitForData() async {
        await receiveQueue.readers.wait {
            !receiveQueue.isEmpty || receiveQueue.isClosed || pendingError.withLock { $0 != nil }
        }
    }

    /// Closes both queues around `unbind` (which stops deliveries), waits until no worker can
    /// still deliver or send (a grace period) and frees what is queued. Idempotent; false when
    /// already closed.
    @discardableResult
    func close(unbind: () -> Void) -> Bool {
        guard isOpen.exchange(false, ordering: .relaxed) else { return false }
        unbind()
        receiveQueue.close()
        sendQueue.close()
        quiescence.synchronize()
        receiveQueue.purge()
        sendQueue.purge()
        errorQueue.removeAll()
        return true
    }
}
