import DatapathGenerator
import Testing
import Datapath
import DatapathCore
import DatapathWire

@Suite struct XConnectTests {
    @Test func framesCrossUnchangedInBothDirections() throws {
        let pool = try PacketPool(capacity: 1024)
        let worker = Worker(pool: pool)
        let core = NetCore()
        // wire0 <-> in0 [xconnect] out0 <-> wire1
        let (wire0, in0) = MemoryDevice.pair("wire0", MACAddress(2, 0, 0, 0, 0, 1), "in0", MACAddress(2, 0, 0, 0, 1, 0))
        let (out0, wire1) = MemoryDevice.pair("out0", MACAddress(2, 0, 0, 0, 1, 1), "wire1", MACAddress(2, 0, 0, 0, 0, 2))
        for device in [wire0, in0, out0, wire1] { core.register(device) }
        let (forward, backward) = XConnect.connect(in0, out0, on: core, workers: 1)
        var batch = PacketBatch()

        let frames: [[UInt8]] = (0..<10).map { i in
            [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00] + Array(repeating: UInt8(i), count: 50)
        }
        for bytes in frames {
            let skb = worker.cache.allocate()!
            skb.put(bytes.count)!.copyMemory(from: bytes, byteCount: bytes.count)
            batch.append(skb)
        }
        wire0.transmit(queue: 0, &batch, worker: worker)
        #expect(in0.receive(queue: 0, into: &batch, max: 256, worker: worker) == 10)
        core.netifReceiveSkb(&batch, worker: worker)
        #expect(wire1.receive(queue: 0, into: &batch, max: 256, worker: worker) == 10)
        #expect((0..<10).map { batch[$0].bytes } == frames)
        #expect(forward.forwardedCount == 10)

        // And back: wire1 -> out0 -> in0 -> wire0.
        wire1.transmit(queue: 0, &batch, worker: worker)
        _ = out0.receive(queue: 0, into: &batch, max: 256, worker: worker)
        core.netifReceiveSkb(&batch, worker: worker)
        #expect(wire0.receive(queue: 0, into: &batch, max: 256, worker: worker) == 10)
        #expect((0..<10).map { batch[$0].bytes } == frames)
        #expect(backward.forwardedCount == 10)
        worker.cache.free(&batch)
        #expect(pool.inUseCount == 0)
    }
}

@Suite struct UDPFlowGeneratorTests {
    func spec(size: Int = 64, flows: Int = 1) -> UDPFlowGenerator.Specification {
        var spec = UDPFlowGenerator.Specification(
            sourceMAC: MACAddress(2, 0, 0, 0, 0, 1), destinationMAC: MACAddress(2, 0, 0, 0, 0, 2),
            source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 19, 0, 7))
        spec.frameSize = size
        spec.flows = flows
        spec.sourcePort = 4000
        spec.destinationPort = 53
        return spec
    }

    @Test func framesHaveValidHeadersAndChecksumsForEveryFlow() throws {
        let generator = try UDPFlowGenerator(spec(size: 128, flows: 300))
        let pool = try PacketPool(capacity: 64)
        let worker = Worker(pool: pool)
        for flow in [0, 1, 2, 255, 299] {
            let skb = try #require(worker.cache.allocate())
            #expect(generator.fill(skb, flow: flow))
            #expect(skb.length == 124)
            let frame = try #require(EthernetFrame.parse(skb.data, length: skb.length))
            #expect(frame.etherType == .ipv4)
            let ip = try #require(IPv4Header(skb.data + 14, length: skb.length - 14))
            #expect(ip.isChecksumValid)
            #expect(ip.totalLength == 110)
            #expect(ip.source == IPv4Address(198, 18, 0, 1) && ip.destination == IPv4Address(198, 19, 0, 7))
            let udp = try #require(UDPHeader(skb.data + 34, length: skb.length - 34))
            #expect(udp.sourcePort == 4000 + UInt16(flow))
            #expect(udp.destinationPort == 53)
            #expect(udp.length == 90)
            // The UDP checksum over pseudo-header, header and payload verifies to zero.
            let sum = InternetChecksum.sum(skb.data + 34, count: 90,
                                           initial: InternetChecksum.pseudoHeaderSum(
                                               source: ip.source, destination: ip.destination, protocol: .udp, length: 90))
            #expect(InternetChecksum.fold(sum) == 0xFFFF)
            worker.cache.free(skb)
        }
        #expect(pool.inUseCount == 0)
    }

    @Test func flowsCanDifferInDestinationWithBothChecksumsValid() throws {
        var specification = spec(size: 64, flows: 100_000)
        specification.varyDestination = true
        let generator = try UDPFlowGenerator(specification)
        let pool = try PacketPool(capacity: 64)
        let worker = Worker(pool: pool)
        for flow in [0, 1, 255, 256, 65535, 99_999] {
            let skb = try #require(worker.cache.allocate())
            #expect(generator.fill(skb, flow: flow))
            let ip = try #require(IPv4Header(skb.data + 14, length: skb.length - 14))
            #expect(ip.isChecksumValid)
            #expect(ip.destination == IPv4Address(hostOrder: IPv4Address(198, 19, 0, 7).hostOrder + UInt32(flow)))
            let udp = try #require(UDPHeader(skb.data + 34, length: skb.length - 34))
            #expect(udp.sourcePort == 4000)
            let length = Int(udp.length)
            let sum = InternetChecksum.sum(skb.data + 34, count: length,
                                           initial: InternetChecksum.pseudoHeaderSum(
                                               source: ip.source, destination: ip.destination, protocol: .udp, length: length))
            #expect(InternetChecksum.fold(sum) == 0xFFFF)
            worker.cache.free(skb)
        }
    }

    @Test func sizesOutsideTheEthernetRangeAreErrors() {
        #expect(throws: GeneratorError.self) { try UDPFlowGenerator(spec(size: 63)) }
        #expect(throws: GeneratorError.self) { try UDPFlowGenerator(spec(size: 9019)) }
        #expect(throws: GeneratorError.self) { try UDPFlowGenerator(spec(flows: 0)) }
    }
}
