import Testing
@testable import Datapath
import DatapathCore
import DatapathWire

/// Neighbours are referenced by slab handle (slot + generation), not by counted pointer.
@Suite struct NeighbourHandleTests {
    @Test func aHandleFindsItsEntryUntilTheEntryLeavesTheTable() throws {
        let lab = try NeighbourLab()
        let neighbour = lab.neighbours.lookupOrCreate(NeighbourLab.peer, device: lab.eth0)!
        let handle = neighbour.handle
        #expect(handle.rawValue > 1 && handle.rawValue & 3 == 0)
        #expect(lab.neighbours.entry(handle) === neighbour)
        #expect(lab.neighbours.remove(NeighbourLab.peer, ifindex: lab.eth0.ifindex))
        #expect(lab.neighbours.entry(handle) == nil)
        // A new entry for the same address is a new handle; the old one still finds nothing.
        let again = lab.neighbours.lookupOrCreate(NeighbourLab.peer, device: lab.eth0)!
        #expect(again.handle != handle && lab.neighbours.entry(handle) == nil)
        #expect(lab.neighbours.entry(again.handle) === again)
        #expect(lab.neighbours.entry(NeighbourHandle(rawValue: 0)) == nil)
        #expect(lab.neighbours.entry(NeighbourHandle(rawValue: UInt64(1) << 32 | UInt64(1 << 29) << 2)) == nil)
    }

    /// A slot freed while a worker is inside a batch is not refilled until it has passed a
    /// quiescent state; until then new entries take never-used slots, and once those run out
    /// the table says full rather than reuse a slot a worker may still be reading.
    @Test func freedSlotsWaitForTheGracePeriod() throws {
        var parameters = NeighbourParameters.linuxDefaults
        parameters.maximumEntries = 2
        let lab = try NeighbourLab(parameters: parameters)
        let capacity = lab.neighbours.slab.capacity
        let online = Worker(index: 1, pool: lab.pool)
        lab.core.quiescence.quiescent(online)       // a worker in the middle of a batch
        var freed: [NeighbourHandle] = []
        var made = 0
        // Create and delete until every never-used slot is gone.
        for i in 0..<capacity {
            let address = IPv4Address(198, 18, 1, UInt8(i % 250 + 1))
            guard let entry = lab.neighbours.lookupOrCreate(address, device: lab.eth0) else { break }
            made += 1
            freed.append(entry.handle)
            #expect(lab.neighbours.remove(address, ifindex: lab.eth0.ifindex))
        }
        #expect(made == capacity)
        let before = lab.neighbours.statistics.tableFulls
        #expect(lab.neighbours.lookupOrCreate(IPv4Address(198, 18, 2, 1), device: lab.eth0) == nil)
        #expect(lab.neighbours.statistics.tableFulls == before + 1)
        lab.core.quiescence.quiescent(online)       // the worker moved on
        let reused = try #require(lab.neighbours.lookupOrCreate(IPv4Address(198, 18, 2, 1), device: lab.eth0))
        #expect(reused.handle.slot == freed[0].slot && reused.handle != freed[0])
        #expect(freed.allSatisfy { lab.neighbours.entry($0) == nil })
    }

    /// A packet routed to a neighbour that left the table before the packet was sent is
    /// dropped as NEIGH_FAILED, not sent through a recycled entry.
    @Test func outputThroughAStaleHandleDropsAsNeighFailed() throws {
        let lab = try ForwardLab()
        let stack = lab.stack
        let neighbour = try #require(stack.neighbours.lookup(ForwardLab.hostB, ifindex: lab.eth1.ifindex))
        let handle = neighbour.handle
        #expect(stack.neighbours.remove(ForwardLab.hostB, ifindex: lab.eth1.ifindex))
        var batch = PacketBatch()
        let skb = lab.worker.cache.allocate()!
        _ = skb.put(40)
        skb.resetNetworkHeader()
        skb.control0 = handle.rawValue
        batch.append(skb)
        let before = lab.worker.drops[.neighFailed]
        stack.ipv4.ipFinishOutput2(&batch, worker: lab.worker)
        #expect(lab.worker.drops[.neighFailed] == before + 1)
        var received = PacketBatch()
        #expect(lab.wire1.receive(queue: 0, into: &received, max: 8, worker: lab.worker) == 0)
        #expect(lab.pool.inUseCount == lab.baseline)
    }
}
