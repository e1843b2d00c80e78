import Testing
import Datapath
import DatapathCore
import DatapathWire

/// Keeps what a socket received (payload bytes, source port) and frees the skbs.
final class RecordingUDPReceiver: UDPReceiver, @unchecked Sendable {
    var payloads: [[UInt8]] = []
    var sources: [UInt16] = []
    var errors: [SocketError] = []
    func error(_ message: SocketErrorMessage, socket: UInt32, worker: Worker) { errors.append(message.error) }
    func receive(_ datagrams: inout PacketBatch, socket: UInt32, worker: Worker) -> Int {
        for i in datagrams.indices {
            let skb = datagrams[i]
            payloads.append(Array(UnsafeRawBufferPointer(start: skb.data, count: skb.length)))
            sources.append(UDPHeader(unchecked: skb.transportHeader).sourcePort)
        }
        worker.cache.free(&datagrams)
        return 0
    }
}

/// `udp_rcv` on the router of `ForwardLab` (198.18.1.1 on eth0, host A is 198.18.1.2).
@Suite struct UDPReceiveTests {
    /// A UDP datagram as bytes, checksum filled for `source` → `destination` (or `checksum`).
    static func datagram(from source: IPv4Address = ForwardLab.hostA, to destination: IPv4Address = ForwardLab.routerA,
                         sourcePort: UInt16 = 4000, port: UInt16, payload: [UInt8], checksum: UInt16? = nil,
                         lengthField: Int? = nil) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8) + payload
        bytes.withUnsafeMutableBytes { raw in
            UDPRepr(sourcePort: sourcePort, destinationPort: port, payloadLength: payload.count)
                .emit(to: raw.baseAddress!, source: source, destination: destination)
            let header = UDPHeader(unchecked: raw.baseAddress!)
            if let checksum { header.checksum = checksum }
            if let lengthField { header.length = UInt16(lengthField) }
        }
        return ForwardLab.frame(source: source, destination: destination, protocol: .udp, payload: bytes)
    }

    @Test func aDatagramToAClosedPortGetsPortUnreachable() throws {
        let lab = try ForwardLab()
        lab.deliver(Self.datagram(port: 9, payload: [1, 2, 3]))
        let sent = lab.sent(on: lab.wire0).map(SentIPv4.init)
        #expect(sent.count == 1)
        #expect(sent.first?.protocolNumber == 1 && sent.first?.payload.first == 3 && sent.first?.payload.dropFirst().first == 3)
        #expect(lab.stack.udp.statistics[.noPorts] == 1 && lab.drops(.udpNoSocket) == 1)
        #expect(lab.stack.ipv4.statistics[.inUnknownProtos] == 0)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aBoundSocketReceivesThePayloadWithItsPorts() throws {
        let lab = try ForwardLab()
        let receiver = RecordingUDPReceiver()
        let bound = try lab.stack.udp.open(7, local: SocketAddress(.zero, 7000), receiver: receiver)
        #expect(bound == SocketAddress(.zero, 7000))
        lab.deliver([Self.datagram(port: 7000, payload: Array(0..<100)),
                     Self.datagram(sourcePort: 4001, port: 7000, payload: [9], checksum: 0)])   // no checksum: RFC 768
        #expect(receiver.payloads == [Array(0..<100), [9]])
        #expect(receiver.sources == [4000, 4001])
        #expect(lab.stack.udp.statistics[.inDatagrams] == 2)
        lab.stack.udp.close(7)
        lab.deliver(Self.datagram(port: 7000, payload: [1]))
        #expect(receiver.payloads.count == 2 && lab.stack.udp.statistics[.noPorts] == 1)
        _ = lab.sent(on: lab.wire0)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func badDatagramsAreCountedAndDropped() throws {
        let lab = try ForwardLab()
        let receiver = RecordingUDPReceiver()
        try lab.stack.udp.open(1, local: .any(port: 5000), receiver: receiver)
        lab.deliver([Self.datagram(port: 5000, payload: [1, 2, 3, 4], checksum: 0x1234),     // wrong checksum
                     Self.datagram(port: 5000, payload: [1, 2], lengthField: 40),             // longer than it is
                     Self.datagram(port: 5000, payload: [1, 2], lengthField: 4)])             // shorter than a header
        #expect(lab.stack.udp.statistics[.inCsumErrors] == 1)
        #expect(lab.stack.udp.statistics[.inErrors] == 3)
        #expect(lab.drops(.udpChecksum) == 1 && lab.drops(.udpHeaderInvalid) == 2)
        // A shorter length field trims the datagram; a checksum the ring verified is trusted.
        lab.deliver([Self.datagram(port: 5000, payload: [1, 2, 3, 4, 5, 6], lengthField: 8 + 2)], checksum: .unnecessary)
        lab.deliver([Self.datagram(port: 5000, payload: [7, 7], checksum: 0xBEEF)], checksum: .unnecessary)
        // Partial (a local sender's offload, as veth peers send): the field is only the
        // pseudo-header sum, and it is trusted as Linux does.
        lab.deliver([Self.datagram(port: 5000, payload: [8], checksum: 0x1111)], checksum: .partial)
        #expect(receiver.payloads == [[1, 2], [7, 7], [8]])
        #expect(lab.sent(on: lab.wire0).isEmpty)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aBroadcastNobodyListensToIsIgnoredWithoutAnError() throws {
        let lab = try ForwardLab()
        lab.deliver(Self.datagram(to: IPv4Address(198, 18, 1, 255), port: 67, payload: [1]))
        #expect(lab.stack.udp.statistics[.ignoredMulti] == 1 && lab.stack.udp.statistics[.noPorts] == 0)
        #expect(lab.sent(on: lab.wire0).isEmpty)
        #expect(lab.poolIsAtBaseline)
    }

    /// Socket id 0 is an id like any other, and opening an id that is bound changes nothing.
    @Test func socketZeroReceivesAndARefusedOpenLeavesTheBoundSocketAlone() throws {
        let lab = try ForwardLab()
        let zero = RecordingUDPReceiver(), one = RecordingUDPReceiver()
        try lab.stack.udp.open(0, local: .any(port: 5300), receiver: zero)
        try lab.stack.udp.open(1, local: .any(port: 5301), receiver: one)
        #expect(throws: SocketError.alreadyBound(.any(port: 5300))) {
            try lab.stack.udp.open(0, local: .any(port: 5302), receiver: RecordingUDPReceiver())
        }
        lab.deliver([Self.datagram(port: 5300, payload: [1]), Self.datagram(port: 5301, payload: [2]),
                     Self.datagram(port: 5300, payload: [3])])
        #expect(zero.payloads == [[1], [3]] && one.payloads == [[2]])
        #expect(lab.sent(on: lab.wire0).isEmpty)
        #expect(lab.poolIsAtBaseline)
    }

    @Test func aSocketCannotBindAnAddressThatIsNotLocal() throws {
        let lab = try ForwardLab()
        #expect(throws: SocketError.addressNotAvailable(IPv4Address(198, 18, 9, 9))) {
            try lab.stack.udp.open(1, local: SocketAddress(IPv4Address(198, 18, 9, 9), 53), receiver: RecordingUDPReceiver())
        }
        let bound = try lab.stack.udp.open(2, local: SocketAddress(ForwardLab.routerA, 0), receiver: RecordingUDPReceiver())
        #expect(InetHashTable.ephemeralPorts.contains(bound.port))
        #expect(lab.stack.udp.snmpLinesMatchProc())
    }
}

extension UDP {
    /// The `Udp:` lines name the counters in /proc/net/snmp's order.
    func snmpLinesMatchProc() -> Bool {
        statistics.snmpLines().hasPrefix(
            "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti\nUdp: ")
    }
}
