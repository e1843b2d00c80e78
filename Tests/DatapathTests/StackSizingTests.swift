import Datapath
import DatapathCore
import Testing

/// A stack's per-worker state is sized by `Stack(workers:)`; a group with more workers must not
/// silently share it (it used to: every `worker.index % n` site mapped worker 2 onto worker 0).
@Suite struct StackSizingTests {
    @Test func aStackDrivenByMoreWorkersThanItWasMadeForIsAPreconditionFailure() async {
        await #expect(processExitsWith: .failure) {
            let stack = Stack(workers: 1)
            let pool = try! PacketPool(capacity: 64, bufferSize: 2048)
            let group = WorkerGroup(core: stack.core, pool: pool, count: 2, pin: false)
            stack.start(on: group)
        }
    }

    @Test func aWorkerBeyondTheStackIsCaughtAtItsFirstPacket() async {
        await #expect(processExitsWith: .failure) {
            let stack = Stack(workers: 2)
            let pool = try! PacketPool(capacity: 64, bufferSize: 2048)
            _ = stack.ipv4.statistics.block(Worker(index: 2, pool: pool))
        }
    }

    @Test func aStackSizedForTheGroupStarts() throws {
        let stack = Stack(workers: 2)
        let pool = try PacketPool(capacity: 64, bufferSize: 2048)
        let group = WorkerGroup(core: stack.core, pool: pool, count: 2, pin: false)
        stack.start(on: group)
        #expect(group.workers.allSatisfy { $0.timers.pending > 0 } )
    }
}
