import Datapath
import DatapathCore
import Synchronization

/// A UDP echo server on the run-to-completion API (RFC 862's service): the worker that
/// receives a batch of datagrams calls `receive`, which addresses each skb back to its sender
/// and sends the whole batch with one `UDP.send` — headers written in place in the skbs that
/// arrived, no copy, no allocation, no thread crossing. This is the shape of a packet app
/// built on swift-datapath: a `UDPReceiver` and the batch send.
public final class UDPEchoServer: UDPReceiver, @unchecked Sendable {
    public let udp: UDP
    public let socket: UInt32
    /// The address bound (the port picked when 0 was asked for).
    public private(set) var local = SocketAddress.any()
    let echoed = Atomic<UInt64>(0)
    let failed = Atomic<UInt64>(0)

    /// Binds `local` as socket `socket` of `stack`'s UDP and starts echoing.
    public init(stack: Stack, local: SocketAddress, socket: UInt32 = 1) throws(SocketError) {
        udp = stack.udp
        self.socket = socket
        self.local = try udp.open(socket, local: local, receiver: self)
    }

    /// Datagrams sent back so far, and sends that failed (no route back, no buffer).
    public var counts: (echoed: UInt64, failed: UInt64) {
        (echoed.load(ordering: .relaxed), failed.load(ordering: .relaxed))
    }

    public func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
        let count = datagrams.count
        for i in datagrams.indices { datagrams[i].udpDestination = datagrams[i].udpRemote }
        let sent = (try? udp.send(&datagrams, from: socket, worker: worker))?.sent ?? 0
        echoed.add(UInt64(sent), ordering: .relaxed)
        if sent < count { failed.add(UInt64(count - sent), ordering: .relaxed) }
        return 0
    }

    /// Stops echoing: unbinds the socket.
    public func close() { udp.close(socket) }
}
