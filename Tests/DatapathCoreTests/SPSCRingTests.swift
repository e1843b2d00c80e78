import Foundation
import Synchronization
import Testing
@testable import DatapathCore

/// A non-null pointer standing for the integer `value` (values start at 0).
private func token(_ value: Int) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: value + 1)! }
private func value(_ pointer: UnsafeMutableRawPointer) -> Int { Int(bitPattern: pointer) - 1 }

/// State the producer thread and the test share.
private final class HandoffState: Sendable {
    let stop = Atomic<Bool>(false)
    let producerDone = Atomic<Bool>(false)
    let produced = Atomic<Int>(0)
}

@Suite struct SPSCRingTests {
    @Test func emptyRingDequeuesNothing() {
        let ring = SPSCRing(capacity: 8)
        var out = [UnsafeMutableRawPointer](repeating: token(0), count: 8)
        #expect(ring.dequeueBurst(into: &out, max: 8) == 0)
        #expect(ring.count == 0)
        #expect(ring.isEmpty)
        #expect(ring.capacity == 8)
    }

    @Test func fullRingTakesAPartialBurstThenNothing() {
        let ring = SPSCRing(capacity: 8)
        let items = (0..<12).map(token)
        #expect(ring.enqueueBurst(items, count: 5) == 5)
        #expect(ring.enqueueBurst(Array(items[5...]), count: 7) == 3)
        #expect(ring.count == 8)
        #expect(ring.enqueueBurst(Array(items[8...]), count: 4) == 0)
        #expect(!ring.enqueue(token(99)))

        var out = [UnsafeMutableRawPointer](repeating: token(0), count: 16)
        #expect(ring.dequeueBurst(into: &out, max: 3) == 3)
        #expect(out[0..<3].map(value) == [0, 1, 2])
        // Room for exactly three more, and the producer sees it (its cached index refreshes).
        #expect(ring.enqueueBurst(Array(items[8...]), count: 4) == 3)
        #expect(ring.dequeueBurst(into: &out, max: 16) == 8)
        #expect(out[0..<8].map(value) == [3, 4, 5, 6, 7, 8, 9, 10])
        #expect(ring.dequeueBurst(into: &out, max: 16) == 0)
    }

    @Test func singleEnqueueWrapsAroundInOrder() {
        let ring = SPSCRing(capacity: 4)
        var out = [UnsafeMutableRawPointer](repeating: token(0), count: 4)
        var next = 0, expected = 0
        for round in 0..<50 {
            while ring.enqueue(token(next)) { next += 1 }
            let got = ring.dequeueBurst(into: &out, max: 1 + round % 4)
            for i in 0..<got {
                #expect(value(out[i]) == expected)
                expected += 1
            }
        }
        #expect(next - expected == ring.count)
    }

    @Test func capacityMustBeAPowerOfTwo() async {
        await #expect(processExitsWith: .failure) { _ = SPSCRing(capacity: 12) }
    }

    /// Ten million values cross between two threads in bursts of 32 with nothing lost,
    /// duplicated or reordered.
    @Test(.timeLimit(.minutes(1)))
    func twoThreadsHandOffTenMillionInOrder() throws {
        let total = 10_000_000
        let burst = 32
        let ring = SPSCRing(capacity: 1024)
        let state = HandoffState()

        let producer = Thread {
            var items = [UnsafeMutableRawPointer](repeating: token(0), count: burst)
            var next = 0
            while next < total && !state.stop.load(ordering: .relaxed) {
                let n = min(burst, total - next)
                for i in 0..<n { items[i] = token(next + i) }
                var sent = 0
                while sent < n && !state.stop.load(ordering: .relaxed) {
                    let got = items.withUnsafeBufferPointer { ring.enqueueBurst($0.baseAddress! + sent, count: n - sent) }
                    if got == 0 { sched_yield() }
                    sent += got
                }
                next += sent
            }
            state.produced.store(next, ordering: .relaxed)
            state.producerDone.store(true, ordering: .releasing)
        }
        producer.start()

        let deadline = Date().addingTimeInterval(30)
        var out = [UnsafeMutableRawPointer](repeating: token(0), count: burst)
        var expected = 0
        var outOfOrder = 0
        var polls = 0
        while expected < total {
            let got = out.withUnsafeMutableBufferPointer { ring.dequeueBurst(into: $0.baseAddress!, max: burst) }
            for i in 0..<got where value(out[i]) != expected + i { outOfOrder += 1 }
            expected += got
            if got == 0 { sched_yield() }
            polls &+= 1
            if polls & 0xFFF == 0 && Date() > deadline { break }
        }
        state.stop.store(true, ordering: .relaxed)
        while !state.producerDone.load(ordering: .acquiring) { sched_yield() }

        #expect(expected == total, "timed out after 30 s with \(expected) of \(total) received")
        #expect(outOfOrder == 0)
        #expect(state.produced.load(ordering: .relaxed) == total)
        #expect(ring.count == 0)
        #expect(out.withUnsafeMutableBufferPointer { ring.dequeueBurst(into: $0.baseAddress!, max: burst) } == 0)
    }
}
