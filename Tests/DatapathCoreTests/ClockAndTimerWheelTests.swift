import Testing
@testable import DatapathCore

private let ms: UInt64 = 1_000_000

/// Records which timers fired, in order.
private final class FiringLog {
    var fired: [String] = []
    func callback(_ name: String) -> () -> Void { { [unowned self] in self.fired.append(name) } }
}

@Suite struct ClockTests {
    @Test func virtualClockMovesOnlyWhenTold() {
        let clock = VirtualClock(start: 1_000)
        #expect(clock.now() == 1_000)
        clock.advance(by: .nanoseconds(500))
        #expect(clock.now() == 1_500)
        clock.set(10_000)
        #expect(clock.now() == 10_000)
        clock.advance(by: .seconds(Int64.max))
        #expect(clock.now() == .max)
        #expect(VirtualClock().now() == 0)
    }

    @Test func monotonicClockNeverGoesBack() {
        let clock = MonotonicClock()
        var previous = clock.now()
        #expect(previous > 0)
        for _ in 0..<10_000 {
            let now = clock.now()
            #expect(now >= previous)
            previous = now
        }
    }

    @Test func durationsBecomeClockNanoseconds() {
        #expect(Duration.milliseconds(1500).nanoseconds == 1_500_000_000)
        #expect(Duration.nanoseconds(7).nanoseconds == 7)
        #expect(Duration.zero.nanoseconds == 0)
        #expect(Duration.seconds(-3).nanoseconds == 0)
        #expect(Duration.seconds(Int64.max).nanoseconds == .max)
        #expect(Duration.seconds(600).nanoseconds == 600_000_000_000)
    }

    @Test func nanosecondHelpers() {
        #expect(Nanoseconds.seconds(1.5) == 1_500_000_000)
        #expect(Nanoseconds.seconds(-1) == 0)
        #expect(Nanoseconds.seconds(1e30) == .max)
        #expect(Nanoseconds.milliseconds(250) == 250_000_000)
        #expect(Nanoseconds.microseconds(3) == 3_000)
        #expect(Nanoseconds.milliseconds(.max) == .max)
    }
}

@Suite struct TimerWheelTests {
    @Test func firesInDeadlineOrderAndNeverEarly() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock)
        let log = FiringLog()
        wheel.schedule(at: 5 * ms, log.callback("5"))
        wheel.schedule(at: 1 * ms, log.callback("1"))
        wheel.schedule(at: 3 * ms, log.callback("3a"))
        wheel.schedule(at: 3 * ms, log.callback("3b"))   // same deadline: scheduling order
        wheel.schedule(at: 1 * ms + ms / 2, log.callback("1.5"))
        wheel.schedule(at: 1 * ms + ms / 4, log.callback("1.25"))
        #expect(wheel.pending == 6)

        clock.set(1 * ms + ms / 2 - 1)
        #expect(wheel.run() == 2)
        #expect(log.fired == ["1", "1.25"])
        clock.set(1 * ms + ms / 2)
        #expect(wheel.run() == 1)
        #expect(log.fired == ["1", "1.25", "1.5"])
        clock.set(10 * ms)
        #expect(wheel.run() == 3)
        #expect(log.fired == ["1", "1.25", "1.5", "3a", "3b", "5"])
        #expect(wheel.pending == 0)
        #expect(wheel.run() == 0)
    }

    @Test func scheduleAfterCountsFromTheClock() {
        let clock = VirtualClock(start: 7 * ms)
        let wheel = TimerWheel(clock: clock)
        let log = FiringLog()
        wheel.schedule(after: .milliseconds(2), log.callback("a"))
        #expect(wheel.nextDeadline == 9 * ms)
        #expect(wheel.run(now: 9 * ms - 1) == 0)
        #expect(wheel.run(now: 9 * ms) == 1)
        #expect(log.fired == ["a"])
    }

    @Test func cancelledTimersDoNotFire() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock)
        let log = FiringLog()
        let a = wheel.schedule(at: 2 * ms, log.callback("a"))
        wheel.schedule(at: 3 * ms, log.callback("b"))
        #expect(wheel.cancel(a))
        #expect(!wheel.cancel(a))
        #expect(wheel.pending == 1)
        clock.set(5 * ms)
        #expect(wheel.run() == 1)
        #expect(log.fired == ["b"])
    }

    @Test func staleCancelIsHarmlessAfterTheEntryIsReused() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock)
        let log = FiringLog()
        let first = wheel.schedule(at: 1 * ms, log.callback("first"))
        clock.set(1 * ms)
        wheel.run()
        let second = wheel.schedule(at: 2 * ms, log.callback("second"))   // reuses the storage
        #expect(first != second)
        #expect(!wheel.cancel(first))
        #expect(wheel.pending == 1)
        clock.set(2 * ms)
        wheel.run()
        #expect(log.fired == ["first", "second"])
        #expect(!wheel.cancel(second))
    }

    @Test func anActionCanCancelALaterTimerOfTheSameRun() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock)
        let log = FiringLog()
        var victim: TimerID?
        wheel.schedule(at: 1 * ms) {
            log.fired.append("killer")
            #expect(wheel.cancel(victim!))
        }
        victim = wheel.schedule(at: 1 * ms + 10, log.callback("victim"))
        wheel.schedule(at: 2 * ms, log.callback("survivor"))
        clock.set(3 * ms)
        #expect(wheel.run() == 2)
        #expect(log.fired == ["killer", "survivor"])
        #expect(wheel.pending == 0)
    }

    @Test func timersBeyondOneRevolutionWaitForTheirTurn() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock, tick: .milliseconds(1), slots: 16)   // one revolution = 16 ms
        let log = FiringLog()
        wheel.schedule(at: 100 * ms, log.callback("far"))
        wheel.schedule(at: 5 * ms, log.callback("near"))
        wheel.schedule(at: 37 * ms, log.callback("middle"))
        var firedAt: [UInt64] = []
        for t in stride(from: 0, through: 120 * ms, by: Int(ms / 2)) {
            clock.set(t)
            if wheel.run() > 0 { firedAt.append(t) }
        }
        #expect(log.fired == ["near", "middle", "far"])
        #expect(firedAt == [5 * ms, 37 * ms, 100 * ms])
    }

    @Test func aBigJumpFiresEverythingDueInOrder() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock, tick: .milliseconds(1), slots: 64)
        var order: [UInt64] = []
        var deadlines: [UInt64] = []
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2_000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let deadline = (seed >> 20) % (20_000 * ms)   // up to 20 s: hundreds of revolutions
            deadlines.append(deadline)
            wheel.schedule(at: deadline) { order.append(deadline) }
        }
        clock.set(10_000 * ms)
        let firstHalf = wheel.run()
        #expect(firstHalf == deadlines.filter { $0 <= 10_000 * ms }.count)
        #expect(order == order.sorted())
        #expect(order.allSatisfy { $0 <= 10_000 * ms })

        clock.set(3_600_000 * ms)   // an hour later
        #expect(wheel.run() == deadlines.count - firstHalf)
        #expect(order == deadlines.sorted())
        #expect(wheel.pending == 0)
        #expect(wheel.nextDeadline == nil)
    }

    @Test func aRareRunAfterManyEmptyRevolutionsLosesNothing() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock, tick: .milliseconds(1), slots: 8)
        let log = FiringLog()
        wheel.schedule(at: 1_000_003 * ms, log.callback("late"))
        clock.set(1_000_002 * ms)
        #expect(wheel.run() == 0)
        clock.set(1_000_003 * ms)
        #expect(wheel.run() == 1)
        #expect(log.fired == ["late"])
    }

    @Test func sparseTimersManyRevolutionsApartFireInOneRun() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock, tick: .milliseconds(1), slots: 8)
        var order: [UInt64] = []
        for deadline: UInt64 in [90_000 * ms, 100 * ms, 5_000 * ms + 1, 5_000 * ms, 86_400_000 * ms] {
            wheel.schedule(at: deadline) { order.append(deadline) }
        }
        clock.set(100_000 * ms)
        #expect(wheel.run() == 4)
        #expect(order == [100 * ms, 5_000 * ms, 5_000 * ms + 1, 90_000 * ms])
        #expect(wheel.nextDeadline == 86_400_000 * ms)
        clock.set(86_400_000 * ms)
        #expect(wheel.run() == 1)
        #expect(order.last == 86_400_000 * ms)
    }

    @Test func delayZeroFromAnActionWaitsForTheNextRun() {
        let clock = VirtualClock(start: 10 * ms)
        let wheel = TimerWheel(clock: clock)
        var count = 0
        func rearm() {
            wheel.schedule(after: .zero) {
                count += 1
                rearm()
            }
        }
        rearm()
        #expect(wheel.run() == 1)
        #expect(count == 1)
        #expect(wheel.pending == 1)
        #expect(wheel.nextDeadline == 10 * ms)
        #expect(wheel.run() == 1)
        #expect(count == 2)
    }

    /// Delays are Durations: a negative one is due now, one beyond what the clock counts
    /// (584 years) never comes; the tick reads back as given.
    @Test func delaysAreDurationsClampedToTheClock() {
        let clock = VirtualClock(start: 10 * ms)
        let wheel = TimerWheel(clock: clock, tick: .microseconds(250), slots: 16)
        #expect(wheel.tick == .microseconds(250))
        let log = FiringLog()
        wheel.schedule(after: .milliseconds(-5), log.callback("past"))
        wheel.schedule(after: .seconds(Int64.max), log.callback("never"))
        wheel.schedule(after: .microseconds(1_500), log.callback("soon"))
        #expect(wheel.nextDeadline == 10 * ms)
        #expect(wheel.run() == 1)
        clock.set(11 * ms + ms / 2)
        #expect(wheel.run() == 1)
        #expect(log.fired == ["past", "soon"])
        #expect(wheel.nextDeadline == .max)
    }

    @Test func aPeriodicTimerCatchesUpAfterAJumpInOrder() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock, tick: .milliseconds(1), slots: 16)
        var ticks: [UInt64] = []
        func every10(from deadline: UInt64) {
            wheel.schedule(at: deadline) {
                ticks.append(deadline)
                every10(from: deadline + 10 * ms)
            }
        }
        every10(from: 10 * ms)
        wheel.schedule(at: 45 * ms) { ticks.append(45) }
        clock.set(100 * ms)
        #expect(wheel.run() == 11)
        #expect(ticks == [10 * ms, 20 * ms, 30 * ms, 40 * ms, 45, 50 * ms, 60 * ms, 70 * ms, 80 * ms, 90 * ms, 100 * ms])
        #expect(wheel.nextDeadline == 110 * ms)
    }

    @Test func aPastDeadlineScheduledByAnActionFiresOnTheNextRun() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock)
        let log = FiringLog()
        wheel.schedule(at: 5 * ms) {
            log.fired.append("outer")
            wheel.schedule(at: 1 * ms, log.callback("past"))
        }
        clock.set(50 * ms)
        #expect(wheel.run() == 1)
        #expect(log.fired == ["outer"])
        #expect(wheel.nextDeadline == 1 * ms)
        #expect(wheel.run() == 1)
        #expect(log.fired == ["outer", "past"])
    }

    @Test func nextDeadlineTracksTheEarliestTimer() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock, tick: .milliseconds(1), slots: 16)
        #expect(wheel.nextDeadline == nil)
        let far = wheel.schedule(at: 500 * ms) {}
        #expect(wheel.nextDeadline == 500 * ms)
        let near = wheel.schedule(at: 7 * ms + 3) {}
        #expect(wheel.nextDeadline == 7 * ms + 3)
        wheel.schedule(at: 9 * ms) {}
        #expect(wheel.cancel(near))
        #expect(wheel.nextDeadline == 9 * ms)
        clock.set(9 * ms)
        wheel.run()
        #expect(wheel.nextDeadline == 500 * ms)
        #expect(wheel.cancel(far))
        #expect(wheel.nextDeadline == nil)
        // A deadline already past is still reported, so an event loop does not sleep.
        wheel.schedule(at: 1 * ms) {}
        #expect(wheel.nextDeadline == 1 * ms)
    }

    @Test func storageIsReusedNotGrown() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock)
        for round in 0..<100 {
            for i in 0..<10 { wheel.schedule(at: UInt64(round * 10 + i) * ms) {} }
            clock.set(UInt64(round * 10 + 10) * ms)
            #expect(wheel.run() == 10)
        }
        #expect(wheel.state.pointee.count == 10)
    }
}

/// Embedded timers (Linux's `timer_list`): a kind's handler called with the context word.
@Suite struct EmbeddedTimerTests {
    /// Owns three embedded timers; records (context, time) per firing; re-arms timer 2 once.
    final class Owner: TimerHandler {
        let clock: VirtualClock
        var fired: [(UInt64, UInt64)] = []
        var timers: [WheelTimer] = []
        var rearmed = false

        init(clock: VirtualClock) { self.clock = clock }

        func timerFired(_ kind: TimerKind, context: UInt64, wheel: TimerWheel) {
            fired.append((context, clock.now()))
            #expect(!wheel.isPending(timers[Int(context)]))
            if context == 2 && !rearmed {
                rearmed = true
                wheel.arm(&timers[2], after: .milliseconds(5))
            }
        }
    }

    @Test func armRearmCancelAndFireWithTheContext() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock)
        let owner = Owner(clock: clock)
        let kind = wheel.register(owner)
        owner.timers = (0..<3).map { WheelTimer(kind: kind, context: UInt64($0)) }
        #expect(!wheel.isPending(owner.timers[0]))
        #expect(wheel.arm(&owner.timers[0], at: 10 * ms) == false)
        wheel.arm(&owner.timers[1], at: 3 * ms)
        wheel.arm(&owner.timers[2], at: 4 * ms)
        #expect(wheel.arm(&owner.timers[0], at: 2 * ms) == true)   // mod_timer moves it earlier
        #expect(wheel.pending == 3 && wheel.deadline(of: owner.timers[0]) == 2 * ms)
        #expect(wheel.cancel(&owner.timers[1]) && !wheel.isPending(owner.timers[1]))
        #expect(!wheel.cancel(&owner.timers[1]))
        for t in stride(from: UInt64(0), through: 20, by: 1) {
            clock.set(t * ms)
            wheel.run()
        }
        #expect(owner.fired.map(\.0) == [0, 2, 2])
        #expect(owner.fired.map(\.1) == [2 * ms, 4 * ms, 9 * ms])
        #expect(wheel.pending == 0 && owner.timers.allSatisfy { !wheel.isPending($0) })
    }

    @Test func aFiredTimersStaleHandleCannotCancelTheEntryThatReusedItsSlot() {
        let clock = VirtualClock()
        let wheel = TimerWheel(clock: clock)
        let owner = Owner(clock: clock)
        let kind = wheel.register(owner)
        owner.timers = (0..<2).map { WheelTimer(kind: kind, context: UInt64($0)) }
        wheel.arm(&owner.timers[0], at: 1 * ms)
        var stale = owner.timers[0]
        clock.set(1 * ms)
        wheel.run()
        wheel.arm(&owner.timers[1], at: 5 * ms)       // reuses the freed slot
        #expect(!wheel.cancel(&stale))
        #expect(wheel.isPending(owner.timers[1]))
    }

    @Test func armingAnUnregisteredKindIsAPreconditionFailure() async {
        await #expect(processExitsWith: .failure) {
            let wheel = TimerWheel(clock: VirtualClock())
            var timer = WheelTimer(kind: .unregistered)
            wheel.arm(&timer, after: .nanoseconds(1))
        }
    }
}
