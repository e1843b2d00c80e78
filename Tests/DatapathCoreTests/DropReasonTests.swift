import DatapathCore
import Testing

/// Drop reasons are ranges per subsystem (Linux's `SKB_DROP_REASON_SUBSYS_*`): a reason's
/// counter index can never fall outside the worker's block, and Core knows only its own.
@Suite struct DropReasonTests {
    @Test func reasonsOfDifferentSubsystemsNeverShareACounter() {
        let a = DropReason(DropSubsystem(rawValue: 9), 5)
        let b = DropReason(DropSubsystem(rawValue: 10), 5)
        #expect(a != b)
        #expect(a.subsystem == DropSubsystem(rawValue: 9) && a.code == 5)
        let counters = DropCounters()
        counters.count(a, 3)
        counters.count(b)
        counters.count(.qdiscDrop, 2)
        #expect(counters[a] == 3 && counters[b] == 1 && counters[.qdiscDrop] == 2)
        #expect(counters.total == 6)
        #expect(counters.counted.map(\.reason) == [.qdiscDrop, a, b])
    }

    @Test func theLastCodeOfTheLastSubsystemIsCounted() {
        let last = DropReason(DropSubsystem(rawValue: UInt8(DropSubsystem.maximumCount - 1)),
                              DropSubsystem.reasonsPerSubsystem - 1)
        #expect(Int(last.rawValue) == DropReason.capacity - 1)
        let counters = DropCounters()
        counters.count(last)
        #expect(counters[last] == 1 && counters.total == 1)
    }

    @Test func coreNamesItsOwnReasonsAndAnUnregisteredOneSaysWhereItIsFrom() {
        #expect(DropReason.qdiscDrop.description == "QDISC_DROP")
        #expect(DropReason.deviceDown.description == "DEV_READY")
        #expect(DropReason.allCases.contains(.transmitRingFull))
        let unnamed = DropReason(DropSubsystem(rawValue: 15), 63)
        #expect(unnamed.description == "subsystem15#63")
    }

    @Test func aRegisteredSubsystemNamesItsReasons() {
        let subsystem = DropSubsystem(rawValue: 14)
        let reason = DropReason(subsystem, 2)
        DropReason.register(subsystem, name: "test", reasons: [reason: "TEST_REASON"])
        DropReason.register(subsystem, name: "test", reasons: [reason: "TEST_REASON"])  // idempotent
        #expect(reason.description == "TEST_REASON")
        #expect(DropReason(subsystem, 3).description == "test#3")
        #expect(DropReason.allCases.contains(reason))
    }

    @Test func aCodeOutsideItsSubsystemsRangeIsAPreconditionFailure() async {
        await #expect(processExitsWith: .failure) {
            _ = DropReason(.core, DropSubsystem.reasonsPerSubsystem)
        }
        await #expect(processExitsWith: .failure) {
            _ = DropSubsystem(rawValue: UInt8(DropSubsystem.maximumCount))
        }
    }

    @Test func aCounterIndexOutsideItsBlockIsAPreconditionFailure() async {
        await #expect(processExitsWith: .failure) {
            let block = CounterBlock(count: 8)
            block.add(8)
        }
        await #expect(processExitsWith: .failure) {
            let block = CounterBlock(count: 8)
            block.add(-1)
        }
    }
}
