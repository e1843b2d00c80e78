import Testing
import Datapath
import DatapathCore
import DatapathWire

/// A tap that records each frame's device, destination MAC and packet type, as tcpdump sees them.
final class RecordingTap: PacketTap, @unchecked Sendable {
    var seen: [(device: String, destination: MACAddress, type: PacketType)] = []
    func tap(_ batch: borrowing PacketBatch, device: any NetDevice, worker: Worker) {
        for i in 0..<batch.count {
            let skb = batch[i]
            seen.append((device.name, MACAddress(loadingFrom: skb.macHeader), skb.packetType))
        }
    }
}

@Suite struct TapPlacementTests {
    @Test func bondTrafficIsSeenOnTheSlaveAndOnTheMasterInBothDirections() throws {
        let lab = try BondLab(.activeBackup)
        let slaveTap = RecordingTap(), bondTap = RecordingTap()
        lab.core.addTap(slaveTap, device: lab.slaves[0])
        lab.core.addTap(bondTap, device: lab.bond)
        lab.arrive(on: 0, ethernetFrame(destination: lab.bond.macAddress, source: mac(0x99), marker: 1))
        #expect(slaveTap.seen.map(\.device) == ["s0"])
        #expect(bondTap.seen.map(\.device) == ["bond0"])
        #expect(bondTap.seen.map(\.type) == [.host])

        lab.transmit([udpFrame(destination: mac(0x99))])
        #expect(bondTap.seen.map(\.type) == [.host, .outgoing])
        // The bond took s0's MAC, so s0 saw it as its own.
        #expect(slaveTap.seen.map(\.type) == [.host, .outgoing])
        #expect(slaveTap.seen.last?.destination == mac(0x99))
        _ = lab.sentPerSlave()
        #expect(lab.pool.inUseCount == 0)
    }

    @Test func bridgedFramesAreSeenOnTheirPortsAndOnlyLocalOnesOnTheBridge() throws {
        let lab = try BridgeLab(ports: 2)
        let p0Tap = RecordingTap(), p1Tap = RecordingTap(), bridgeTap = RecordingTap()
        lab.core.addTap(p0Tap, device: lab.ports[0])
        lab.core.addTap(p1Tap, device: lab.ports[1])
        lab.core.addTap(bridgeTap, device: lab.bridge)
        lab.send(from: 0, lab.frame(from: 0, to: mac(0x42), marker: 1))      // flooded
        lab.send(from: 0, lab.frame(from: 0, to: lab.bridge.macAddress, marker: 2))   // local
        _ = lab.receivedByAll()
        #expect(p0Tap.seen.count == 2)
        #expect(p1Tap.seen.map(\.type) == [.outgoing])
        #expect(bridgeTap.seen.map(\.destination) == [lab.bridge.macAddress])
        #expect(lab.pool.inUseCount == 0)
    }
}
