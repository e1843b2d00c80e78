import Foundation
import Synchronization
import Testing
import Datapath
import DatapathCore
import DatapathWire

/// Keeps the payloads a stack socket receives, on the worker's thread, for the test's thread.
final class CollectingUDPReceiver: UDPReceiver, @unchecked Sendable {
    let payloads = Lock<[[UInt8]]>([])
    let errors = Lock<[SocketError]>([])
    func error(_ message: SocketErrorMessage, socket: UInt32, worker: Worker) { errors.withLock { $0.append(message.error) } }
    func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
        for i in datagrams.indices {
            let skb = datagrams[i]
            let bytes = Array(UnsafeRawBufferPointer(start: skb.data, count: skb.length))
            payloads.withLock { $0.append(bytes) }
        }
        worker.cache.free(&datagrams)
        return 0
    }
}

/// UDP between the stack (in process, on AF_PACKET rings) and kernel sockets, in namespaces this
/// suite makes (198.18.0.0/15 only): datagrams up to 65507 bytes, fragmented both ways, byte-exact.
@Suite(.serialized, .enabled(if: NetnsEnvironment.canRunOrRequired, Comment(rawValue: NetnsEnvironment.skipComment)))
struct UDPInteropTests {
    static let sizes = [1, 100, 1472, 1473, 3000, 20000, 65507]

    /// A Python kernel client for an echo server at 198.18.0.1:7: it sends `edges` and `random`
    /// more sizes up to 65507 bytes of random bytes (seeded), retrying each up to three times,
    /// and prints `echoed N of M` (the echoes that came back byte-exact).
    static func echoClientScript(seed: Int, edges: [Int], random: Int) -> String {
        """
        import random, socket, sys
        random.seed(\(seed))
        sizes = \(edges) + [random.randint(1, 65507) for _ in range(\(random))]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        s.connect(('198.18.0.1', 7))
        ok = 0
        for n in sizes:
            data = bytes(random.getrandbits(8) for _ in range(n))
            for attempt in range(3):
                s.send(data)
                try:
                    back = s.recv(65536)
                except socket.timeout:
                    continue
                if back == data:
                    ok += 1
                else:
                    print('mismatch at', n, len(back))
                break
            else:
                print('no echo for', n)
        print('echoed', ok, 'of', len(sizes))
        """
    }

    static func pattern(_ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ size) } }

    /// A kernel host (198.18.0.2 on h0) wired to the stack (198.18.0.1 on eth0 = d0, running);
    /// the caller destroys the lab.
    static func hostAndStack() throws -> (Lab, host: String, RunningStack) {
        let lab = try Lab()
        do {
            let host = try lab.namespace("host")
            let dut = try lab.namespace("dut")
            try lab.veth("h0", in: host, mac: "02:00:00:00:0a:02", "d0", in: dut, mac: "02:00:00:00:0a:01")
            try lab.address("198.18.0.2/24", dev: "h0", in: host)
            let running = try RunningStack(namespace: dut, config: """
                link add eth0 type afpacket dev d0
                addr add 198.18.0.1/24 dev eth0
                """)
            return (lab, host, running)
        } catch {
            lab.destroy()
            throw error
        }
    }

    @Test func datagramsOfEverySizeCrossBothWaysByteExact() throws {
        let (lab, host, running) = try UDPInteropTests.hostAndStack()
        defer { lab.destroy() }
        let stack = running.stack
        let receiver = CollectingUDPReceiver()
        try stack.udp.open(1, local: SocketAddress(IPv4Address(198, 18, 0, 1), 7000), receiver: receiver)

        // Kernel → stack: a kernel client sends each size; the stack's socket gets each whole.
        let sizes = UDPInteropTests.sizes.map(String.init).joined(separator: ",")
        let client = try lab.exec(host, "/usr/bin/python3", ["-c", """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for n in [\(sizes)]:
                s.sendto(bytes(((i * 13 + n) & 0xFF) for i in range(n)), ('198.18.0.1', 7000))
                time.sleep(0.05)
            """], timeout: 30)
        #expect(client.status == 0, "\(client.stderr)")
        #expect(waitUntil(timeout: 5) { receiver.payloads.withLock { $0.count } == UDPInteropTests.sizes.count },
                "\(receiver.payloads.withLock { $0.map(\.count) })\n\(running.dropSummary())")
        let received = receiver.payloads.withLock { $0 }
        #expect(received.map(\.count) == UDPInteropTests.sizes)
        #expect(zip(received, UDPInteropTests.sizes).allSatisfy { $0 == UDPInteropTests.pattern($1) })

        // Stack → kernel: a kernel server prints each datagram's length and whether it matches.
        let server = try lab.spawn(host, "/usr/bin/python3", ["-c", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(('198.18.0.2', 5001)); s.settimeout(15)
            print('ready', flush=True)
            for _ in range(\(UDPInteropTests.sizes.count)):
                d, a = s.recvfrom(65535)
                n = len(d)
                print(n, d == bytes(((i * 13 + n) & 0xFF) for i in range(n)), a[0], flush=True)
            """])
        try server.waitFor("ready")
        let errors = Lock<[String]>([])
        for size in UDPInteropTests.sizes {
            let payload = UDPInteropTests.pattern(size)
            let done = Atomic(false)
            stack.perform { worker in
                do {
                    try payload.withUnsafeBytes {
                        try stack.udp.send($0, from: 1, to: SocketAddress(IPv4Address(198, 18, 0, 2), 5001), worker: worker)
                    }
                } catch {
                    errors.withLock { $0.append("\(size): \(error)") }
                }
                done.store(true, ordering: .releasing)
            }
            #expect(waitUntil(timeout: 5) { done.load(ordering: .acquiring) })
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(server.wait(timeout: 20) == 0, "\(server.stdout) \(server.stderr)\n\(running.dropSummary())")
        #expect(errors.withLock { $0 }.isEmpty, "\(errors.withLock { $0 })")
        let lines = server.stdout.split(separator: "\n").dropFirst().map(String.init)
        #expect(lines == UDPInteropTests.sizes.map { "\($0) True 198.18.0.1" }, "\(server.stdout)")
        #expect(stack.udp.statistics[.outDatagrams] == UInt64(UDPInteropTests.sizes.count))

        // A connected stack socket hears the kernel's port unreachable (ECONNREFUSED).
        let refused = CollectingUDPReceiver()
        try stack.udp.open(2, local: .any(), receiver: refused)
        let closedPort = SocketAddress(IPv4Address(198, 18, 0, 2), 9)
        try stack.udp.connect(2, to: closedPort)
        stack.perform { worker in _ = try? [UInt8](repeating: 7, count: 10).withUnsafeBytes {
            try stack.udp.send($0, from: 2, worker: worker)
        } }
        #expect(waitUntil(timeout: 5) { !refused.errors.withLock { $0 }.isEmpty }, "\(running.dropSummary())")
        #expect(refused.errors.withLock { $0 } == [.connectionRefused(closedPort)])
        #expect(running.stop())
    }

    /// The async API against the kernel: an echo server on a `UDPSocket` (a task awaiting
    /// `inbound` and answering with `send`), a kernel client sending every size (fragmented ones
    /// both ways) and checking each echo byte for byte, one at a time — each answer crosses from
    /// the app task to the worker, which sleeps in poll(2) between datagrams and is woken by its
    /// doorbell (500 small round trips take about half a second here; without the doorbell each
    /// would wait out the worker's 10 ms poll timeout). The server task runs on a thread of its
    /// own (`ThreadExecutor`), as an app beside blocking code should run it.
    @Test func anAsyncEchoServerAnswersTheKernelByteExact() async throws {
        let (lab, host, running) = try UDPInteropTests.hostAndStack()
        defer { lab.destroy() }
        let socket = try UDPSocket(running.stack, bind: .any(port: 7007))
        let executor = ThreadExecutor(name: "udp-echo-app")
        defer { executor.stop() }
        let server = Task(executorPreference: executor) {
            var echoed = 0
            for try await datagram in socket.inbound {
                #expect(datagram.local == SocketAddress(IPv4Address(198, 18, 0, 1), 7007))
                try await socket.send(datagram.payload, to: datagram.remote)
                echoed += 1
            }
            return echoed
        }
        let sizes = UDPInteropTests.sizes + [2, 512, 9000, 40000] + Array(repeating: 64, count: 500)
        let client = try lab.spawn(host, "/usr/bin/python3", ["-c", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(5)
            for n in [\(sizes.map(String.init).joined(separator: ","))]:
                d = bytes(((i * 13 + n) & 0xFF) for i in range(n))
                s.sendto(d, ('198.18.0.1', 7007))
                e, a = s.recvfrom(65535)
                print(n, e == d, a[0], a[1], flush=True)
            """])
        // Awaited, not blocked on, so this test holds no thread of the pool meanwhile.
        for _ in 0..<900 where client.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        #expect(client.wait(timeout: 1) == 0, "\(client.stderr)\n\(running.dropSummary())")
        #expect(client.stdout.split(separator: "\n").map(String.init) == sizes.map { "\($0) True 198.18.0.1 7007" },
                "\(client.stdout)")
        socket.close()
        let echoed = try await server.value
        #expect(echoed == sizes.count)
        #expect(running.stack.udp.statistics[.inDatagrams] == UInt64(sizes.count))
        #expect(running.stack.udp.statistics[.outDatagrams] == UInt64(sizes.count))
        #expect(running.stop())
    }

    /// UDP_SEGMENT: one 10 000-byte send with 1200-byte segments arrives at a kernel socket as
    /// nine datagrams (eight of 1200 bytes, one of 400), together the bytes sent.
    @Test func aSegmentedSendArrivesAsTheRightDatagrams() async throws {
        let (lab, host, running) = try UDPInteropTests.hostAndStack()
        defer { lab.destroy() }
        let server = try lab.spawn(host, "/usr/bin/python3", ["-c", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(('198.18.0.2', 9100))
            s.settimeout(3)
            print('ready', flush=True)
            sizes, data = [], b''
            try:
                while True:
                    d = s.recv(65536)
                    sizes.append(len(d))
                    data += d
            except socket.timeout:
                pass
            print('sizes', sizes, 'ok' if data == bytes((i * 7) & 255 for i in range(10000)) else 'bad', flush=True)
            """])
        try server.waitFor("ready")
        let socket = try UDPSocket(running.stack, bind: .any(), sendOptions: UDPSocketOptions(segmentSize: 1200))
        try await socket.send((0..<10000).map { UInt8(truncatingIfNeeded: $0 &* 7) }, to: SocketAddress(IPv4Address(198, 18, 0, 2), 9100))
        #expect(server.wait(timeout: 15) == 0)
        #expect(server.stdout.contains("sizes [1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 400] ok"), "\(server.stdout)")
        socket.close()
        #expect(running.stop())
    }
}
