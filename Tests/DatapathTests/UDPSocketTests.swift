import Testing
import Datapath
import DatapathCore
import DatapathWire

/// The async-level `UDPSocket` on `ForwardLab`'s router (198.18.1.1 on eth0, host A 198.18.1.2
/// on wire0), its one stand-alone worker attached: receive queues, send queues, the tasklet
/// that sends, pending errors, and close.
@Suite struct UDPSocketTests {
    static func lab() throws -> ForwardLab {
        let lab = try ForwardLab()
        lab.stack.attach([lab.worker])
        return lab
    }

    @Test func aSocketNeedsRunningWorkers() throws {
        let lab = try ForwardLab()
        #expect(throws: SocketError.stackNotRunning) { try UDPSocket(lab.stack, bind: .any(port: 7000)) }
    }

    @Test func datagramsWaitInTheQueueWithTheirMetadata() throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: .any(port: 7000))
        #expect(socket.local == .any(port: 7000))
        #expect(try socket.tryReceive() == nil)
        lab.deliver([UDPReceiveTests.datagram(port: 7000, payload: Array(0..<100)),
                     UDPReceiveTests.datagram(sourcePort: 4001, port: 7000, payload: [9])])
        #expect(socket.queuedReceiveBytes > 0)
        let first = try #require(try socket.tryReceive())
        #expect(first.payload == Array(0..<100))
        #expect(first.remote == SocketAddress(ForwardLab.hostA, 4000))
        #expect(first.local == SocketAddress(ForwardLab.routerA, 7000))
        #expect(first.interfaceIndex == lab.eth0.ifindex)
        #expect(first.ttl == 64)
        let second = try #require(try socket.tryReceive())
        #expect(second.payload == [9] && second.remote.port == 4001)
        #expect(try socket.tryReceive() == nil && socket.queuedReceiveBytes == 0)
        #expect(lab.stack.udp.statistics[.inDatagrams] == 2)
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }

    /// Linux's `__udp_enqueue_schedule_skb`: a datagram is refused while the queue holds more
    /// than the receive buffer (true size: buffer plus head), so the queue overshoots by one.
    @Test func aFullReceiveQueueDropsAndCountsRcvbufErrors() throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: .any(port: 7001), receiveBufferSize: 4096)
        lab.deliver((0..<10).map { UDPReceiveTests.datagram(port: 7001, payload: [UInt8($0)]) })
        // Each datagram holds one pool buffer (2176 bytes) and its 128-byte head: 2304 bytes.
        // 0 and 2304 are within 4096, 4608 is not: two are queued, eight refused.
        #expect(lab.stack.udp.statistics[.rcvbufErrors] == 8)
        #expect(lab.stack.udp.statistics[.inErrors] == 8)
        #expect(lab.stack.udp.statistics[.inDatagrams] == 2)
        #expect(lab.drops(.udpReceiveBufferFull) == 8)
        #expect(try socket.tryReceive()?.payload == [0])
        #expect(try socket.tryReceive()?.payload == [1])
        #expect(try socket.tryReceive() == nil)
        // Room again: the next one is queued.
        lab.deliver(UDPReceiveTests.datagram(port: 7001, payload: [42]))
        #expect(try socket.tryReceive()?.payload == [42])
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }

    @Test func closingFreesWhatIsQueuedAndUnbinds() throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: .any(port: 7002))
        lab.deliver((0..<5).map { UDPReceiveTests.datagram(port: 7002, payload: [UInt8($0)]) })
        socket.close()
        #expect(throws: SocketError.closed) { try socket.trySend(UnsafeRawBufferPointer(start: nil, count: 0)) }
        lab.deliver(UDPReceiveTests.datagram(port: 7002, payload: [1]))
        #expect(lab.stack.udp.statistics[.noPorts] == 1)
        _ = lab.sent(on: lab.wire0)
        #expect(lab.poolIsAtBaseline)
        // The port is free again.
        let again = try UDPSocket(lab.stack, bind: .any(port: 7002))
        again.close()
    }

    @Test func sendsCrossToTheWorkerAndLeaveWhole() async throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: SocketAddress(ForwardLab.routerA, 5000))
        try await socket.send(Array("hello".utf8), to: SocketAddress(ForwardLab.hostA, 6000))
        try socket.connect(to: SocketAddress(ForwardLab.hostA, 6001))
        try await socket.send(Array(repeating: 7, count: 3000))   // to the peer: 3008 bytes in 1480-byte fragments
        #expect(lab.sent(on: lab.wire0).isEmpty)   // nothing leaves before the worker runs
        #expect(lab.worker.tasklets.run(lab.worker) == 1)
        let sent = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(sent.count == 4)
        #expect(sent.first?.protocolNumber == 17)
        let udp = Array(sent[0].payload)
        #expect(udp.count == 8 + 5 && Array(udp[8...]) == Array("hello".utf8))
        #expect(UInt16(udp[2]) << 8 | UInt16(udp[3]) == 6000 && UInt16(udp[0]) << 8 | UInt16(udp[1]) == 5000)
        #expect(sent.dropFirst().map(\.payload.count) == [1480, 1480, 48])
        #expect(lab.stack.udp.statistics[.outDatagrams] == 2)
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aFullSendBufferRefusesWithoutWaitingAndHasRoomOnceSent() throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: .any(port: 5001), sendBufferSize: 4096)
        let to = SocketAddress(ForwardLab.hostA, 6000)
        let payload: [UInt8] = [1, 2, 3]
        try payload.withUnsafeBytes { raw in
            try socket.trySend(raw, to: to)
            try socket.trySend(raw, to: to)
            #expect(throws: SocketError.wouldBlock) { try socket.trySend(raw, to: to) }
            _ = lab.worker.tasklets.run(lab.worker)
            try socket.trySend(raw, to: to)
        }
        _ = lab.worker.tasklets.run(lab.worker)
        #expect(lab.sent(on: lab.wire0).count == 3)
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }

    @Test func whatCanBeToldAtOnceIsThrownAtOnce() throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: .any(port: 5002))
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        #expect(throws: SocketError.notConnected) { try socket.trySend(empty) }
        #expect(throws: SocketError.invalidDestination(SocketAddress(ForwardLab.hostA, 0))) {
            try socket.trySend(empty, to: SocketAddress(ForwardLab.hostA, 0))
        }
        let big = [UInt8](repeating: 0, count: 65508)
        big.withUnsafeBytes { raw in
            _ = #expect(throws: SocketError.messageTooLong(65508, mtu: 65535)) { try socket.trySend(raw, to: .init(ForwardLab.hostA, 9)) }
        }
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }

    /// An error the worker meets after `send` returned is the socket's pending error, thrown
    /// once by the next call (Linux: `sk_err` and `sock_error`).
    @Test func aWorkerSideFailureIsThePendingError() throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: .any(port: 5003))
        let nowhere = IPv4Address(198, 18, 200, 1)
        try [UInt8(1)].withUnsafeBytes { try socket.trySend($0, to: SocketAddress(nowhere, 9)) }
        _ = lab.worker.tasklets.run(lab.worker)
        #expect(throws: SocketError.noRoute(nowhere)) { try socket.tryReceive() }
        #expect(try socket.tryReceive() == nil)   // reported once
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aWaitingReaderWakesForADatagramAndCloseEndsTheSequence() async throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: .any(port: 7003))
        let reader = Task { () -> [[UInt8]] in
            var got: [[UInt8]] = []
            for try await datagram in socket.inbound { got.append(datagram.payload) }
            return got
        }
        // Give the reader time to sleep on the queue, then deliver on this thread (the worker's).
        try await Task.sleep(for: .milliseconds(20))
        lab.deliver([UDPReceiveTests.datagram(port: 7003, payload: [1]), UDPReceiveTests.datagram(port: 7003, payload: [2])])
        // Close once the reader has taken both (close frees what is still queued).
        for _ in 0..<1000 where socket.queuedReceiveBytes > 0 { try await Task.sleep(for: .milliseconds(10)) }
        socket.close()
        let got = try await reader.value
        #expect(got == [[1], [2]])
        #expect(lab.poolIsAtBaseline)
    }

    @Test func theBatchedReaderSeesDatagramsInPlace() async throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: .any(port: 7004))
        lab.deliver((0..<20).map { UDPReceiveTests.datagram(port: 7004, payload: [UInt8($0), 0xEE]) })
        let firsts = try await socket.receive(max: 16) { batch in
            batch.indices.map { batch[$0].data.load(as: UInt8.self) }
        }
        #expect(firsts == Array(0..<16))
        let rest = try await socket.receive { batch in batch.count }
        #expect(rest == 4)
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aConnectedSocketGetsThePortUnreachableAsItsError() async throws {
        let lab = try Self.lab()
        let socket = try UDPSocket(lab.stack, bind: SocketAddress(ForwardLab.routerB, 5004))
        let peer = SocketAddress(ForwardLab.hostB, 9)
        try socket.connect(to: peer)
        try await socket.send([1, 2, 3])
        _ = lab.worker.tasklets.run(lab.worker)
        let sent = lab.sent(on: lab.wire1)
        #expect(sent.count == 1)
        // Host B answers port unreachable, quoting the datagram.
        lab.deliver(ForwardLab.icmpErrorFromHostB(code: 3, quoting: Array(sent[0][14...])), on: lab.eth1)
        await #expect(throws: SocketError.connectionRefused(peer)) { try await socket.receive() }
        socket.close()
        #expect(lab.poolIsAtBaseline)
    }
}

/// `Tasklet`: scheduled from any thread, run once per schedule burst on its worker.
@Suite struct TaskletTests {
    @Test func schedulingTwiceRunsOnceAndARunCanScheduleTheNext() throws {
        let pool = try PacketPool(capacity: 64)
        let worker = Worker(pool: pool)
        final class Count: @unchecked Sendable { var value = 0; var again = false; weak var tasklet: Tasklet? }
        let count = Count()
        let tasklet = Tasklet(on: worker) { _ in
            count.value += 1
            if count.again { count.again = false; count.tasklet?.schedule() }
        }
        count.tasklet = tasklet
        #expect(worker.tasklets.run(worker) == 0)
        tasklet.schedule()
        tasklet.schedule()
        #expect(tasklet.isScheduled)
        #expect(worker.tasklets.run(worker) == 1 && count.value == 1)
        #expect(!tasklet.isScheduled)
        count.again = true
        tasklet.schedule()
        #expect(worker.tasklets.run(worker) == 1 && count.value == 2)
        #expect(worker.tasklets.run(worker) == 1 && count.value == 3)   // the run scheduled it again
        #expect(worker.tasklets.run(worker) == 0)
    }
}
