import Testing
import Datapath
import DatapathCore
import DatapathWire

/// The UDP/raw socket table (Linux's `udp_table`): bind, conflicts, ephemeral ports, lookup order.
@Suite struct InetHashTableTests {
    let local = IPv4Address(198, 18, 1, 1)
    let other = IPv4Address(198, 18, 1, 9)
    let peer = IPv4Address(198, 18, 1, 2)

    @Test func aConnectedSocketBeatsOneBoundToTheAddressWhichBeatsAWildcard() throws {
        let table = InetHashTable(workers: 1)
        try table.bind(1, to: .any(port: 7), options: .reuseAddress)
        try table.bind(2, to: SocketAddress(local, 7), options: .reuseAddress)
        try table.bind(3, to: SocketAddress(local, 7), options: .reuseAddress)
        table.connect(3, to: SocketAddress(peer, 5000))
        func lookup(from source: SocketAddress, to destination: SocketAddress, ifindex: Int = 1) -> UInt32? {
            table.lookup(source: source, destination: destination, ifindex: ifindex, hash: 0)
        }
        #expect(lookup(from: SocketAddress(peer, 5000), to: SocketAddress(local, 7)) == 3)
        #expect(lookup(from: SocketAddress(peer, 5001), to: SocketAddress(local, 7)) == 2)
        #expect(lookup(from: SocketAddress(other, 5000), to: SocketAddress(local, 7)) == 2)
        #expect(lookup(from: SocketAddress(peer, 5000), to: SocketAddress(other, 7)) == 1)
        #expect(lookup(from: SocketAddress(peer, 5000), to: SocketAddress(local, 8)) == nil)
        // The same through a worker's snapshot.
        let pool = try PacketPool(capacity: 8, bufferSize: 2048)
        #expect(table.lookup(source: SocketAddress(peer, 5000), destination: SocketAddress(local, 7), ifindex: 1,
                             hash: 0, worker: Worker(pool: pool)) == 3)
        #expect(table.close(3) && !table.close(3))
        #expect(lookup(from: SocketAddress(peer, 5000), to: SocketAddress(local, 7)) == 2)
    }

    @Test func anAddressInUseIsRefusedUnlessBothShare() throws {
        let table = InetHashTable(workers: 1)
        try table.bind(1, to: .any(port: 7))
        #expect(throws: SocketError.addressInUse(SocketAddress(local, 7))) {
            try table.bind(2, to: SocketAddress(local, 7))
        }
        #expect(throws: SocketError.addressInUse(SocketAddress(local, 7))) {
            try table.bind(2, to: SocketAddress(local, 7), options: .reuseAddress)   // the holder did not share
        }
        try table.bind(3, to: SocketAddress(local, 8), ifindex: 1)
        try table.bind(4, to: SocketAddress(local, 8), ifindex: 2)                   // other device: no overlap
        try table.bind(5, to: SocketAddress(local, 9))
        try table.bind(6, to: SocketAddress(other, 9))                               // other address
        #expect(throws: SocketError.alreadyBound(SocketAddress(other, 9))) {
            try table.bind(6, to: SocketAddress(other, 10))
        }
        #expect(SocketError.addressInUse(SocketAddress(local, 7)).description == "address in use: 198.18.1.1:7")
    }

    @Test func portZeroTakesDistinctEphemeralPortsUntilNoneIsLeft() throws {
        let table = InetHashTable(workers: 1)
        var ports = Set<UInt16>()
        for socket in 1...1000 {
            let bound = try table.bind(UInt32(socket), to: .any())
            #expect(InetHashTable.ephemeralPorts.contains(bound.port))
            ports.insert(bound.port)
        }
        #expect(ports.count == 1000)

        let small = InetHashTable(workers: 1, ephemeralPorts: 40000...40003)
        try small.bind(99, to: SocketAddress(local, 40001))                          // taken by hand
        var taken: [UInt16] = []
        for socket in 1...3 { taken.append(try small.bind(UInt32(socket), to: .any()).port) }
        #expect(Set(taken) == [40000, 40002, 40003])
        #expect(throws: SocketError.noFreePort(40000...40003)) { try small.bind(4, to: .any()) }
        small.close(2)
        #expect(try small.bind(5, to: .any()).port == taken[1])
    }

    @Test func aReusePortGroupSpreadsFlowsOverItsMembersAndKeepsEachFlowOnOne() throws {
        let table = InetHashTable(workers: 1)
        for socket in 1...4 { try table.bind(UInt32(socket), to: SocketAddress(local, 53), options: .reusePort) }
        var hits: [UInt32: Int] = [:]
        var rng = SplitMix64(seed: 11)
        for _ in 0..<4000 {
            let hash = UInt32(truncatingIfNeeded: rng.next())
            let chosen = try #require(table.lookup(source: SocketAddress(peer, 1), destination: SocketAddress(local, 53),
                                                   ifindex: 1, hash: hash))
            #expect(table.lookup(source: SocketAddress(peer, 1), destination: SocketAddress(local, 53), ifindex: 1,
                                 hash: hash) == chosen)
            hits[chosen, default: 0] += 1
        }
        #expect(hits.keys.sorted() == [1, 2, 3, 4])
        #expect(hits.values.allSatisfy { $0 > 800 && $0 < 1200 })
    }

    @Test func aSocketBoundToADeviceTakesOnlyThatDevicesPackets() throws {
        let table = InetHashTable(workers: 1)
        try table.bind(1, to: .any(port: 67), options: .reuseAddress)
        try table.bind(2, to: .any(port: 67), ifindex: 2, options: .reuseAddress)
        #expect(table.lookup(source: SocketAddress(peer, 68), destination: SocketAddress(.broadcast, 67), ifindex: 2,
                             hash: 0) == 2)
        #expect(table.lookup(source: SocketAddress(peer, 68), destination: SocketAddress(.broadcast, 67), ifindex: 1,
                             hash: 0) == 1)
    }
}
