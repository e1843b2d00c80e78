/// Identifies a scheduled timer. Carries a generation number, so cancelling a timer that has
/// already fired or been cancelled — even after its storage was reused — does nothing.
public struct TimerID: Hashable, Sendable {
    let index: Int32
    let generation: UInt32
}

/// One worker's timers (Linux: the per-CPU timer wheel, `kernel/time/timer.c`, which drives
/// neighbour, reassembly and FDB-ageing timers). Single-threaded: only the owning worker's
/// thread touches it.
///
/// A hashed timing wheel: `slots` buckets (a power of two) of `tick` nanoseconds each. A timer
/// due at `deadline` belongs to tick `deadline / tick` and hangs, in an intrusive doubly linked
/// list, off bucket `tick % slots`. Each timer records its absolute tick, so a bucket may hold
/// timers of several revolutions and a timer further out than one revolution needs no rounds
/// counter: it is skipped until the wheel reaches its tick. Schedule and cancel are O(1).
///
/// `run` walks the ticks from where it stopped to `now`, and in each tick fires, in deadline
/// order (ties in scheduling order), the timers whose deadline is ≤ `now`: a timer never fires
/// early, and fires on the first `run` at or after its deadline. When a whole revolution
/// passes without anything due (the clock jumped), the walk skips straight to the earliest
/// occupied tick, so a jump of any size costs O(slots + timers) and loses nothing.
///
/// A timer an action schedules during `run` fires in that same run when its deadline lies in a
/// later tick than the one being fired and is ≤ `now` (a periodic timer catching up after a
/// jump). One due in the tick being fired or earlier — delay 0, a past deadline — waits for
/// the next `run`, so an action that re-arms itself with delay 0 cannot loop.
///
/// Two ways to use it. A *timer* (`WheelTimer`, Linux's `struct timer_list`) is embedded in its
/// owner — a socket's retransmit timer, a queue's expiry — and names a kind registered on the
/// wheel plus a context word; firing calls the kind's handler with the context. Arming,
/// re-arming and cancelling it allocate nothing. A *closure* (`schedule(after:_:)`) is for the
/// control plane's occasional one-off work; it allocates the closure.
///
/// Storage is raw arrays behind one `let` pointer, indexed by `Int32` with a free list, so
/// steady state allocates nothing but the closures of closure timers.
public final class TimerWheel {
    struct Entry {
        var deadline: UInt64
        /// Absolute tick whose bucket the timer hangs off (≥ `deadline / tick`).
        var tick: UInt64
        /// Scheduling order, to break deadline ties.
        var sequence: UInt64
        var previous: Int32
        var next: Int32
        /// The list it is linked on: a bucket, or `deferredList`.
        var list: Int32
        var generation: UInt32
        var state: State
        /// 0: a closure in `actions`; else the index + 1 of its handler in `handlers`.
        var kind: UInt16
        var context: UInt64
    }

    enum State: UInt8 {
        case free
        /// Linked on a bucket of the wheel.
        case wheel
        /// Scheduled by an action for a tick already being fired; rejoins the wheel when
        /// `run` ends.
        case deferred
        /// Taken off the wheel by `run`, about to fire.
        case firing
    }

    public let clock: any DatapathClock
    /// Nanoseconds per tick (`tick` as the clock counts).
    package let tickNanoseconds: UInt64
    /// How long one tick is.
    public var tick: Duration { .nanoseconds(tickNanoseconds) }
    /// Buckets per revolution.
    public let slotCount: Int
    let mask: Int

    /// Everything that changes, behind a `let` pointer: a stored `var` of a class pays a
    /// dynamic exclusivity check on every access, which made a re-arm cost ~200 ns.
    struct Storage {
        /// List heads: one per bucket, then the deferred list.
        var heads: UnsafeMutablePointer<Int32>
        var entries: UnsafeMutablePointer<Entry>
        /// Closures of closure timers, by entry index (nil for embedded timers).
        var actions: UnsafeMutablePointer<(() -> Void)?>
        var count = 0
        var capacity = 0
        var freeHead: Int32 = -1
        /// Every timer on the wheel has `tick ≥ cursor`; `run` resumes here.
        var cursor: UInt64
        var sequence: UInt64 = 0
        /// Timers linked on buckets (not deferred, not firing).
        var wheelCount = 0
        var running = false
        var firingTick: UInt64 = 0
        var cachedNextDeadline: UInt64?
        var nextDeadlineIsCached = true
        /// Timers scheduled and not yet fired or cancelled.
        var pending = 0
    }

    let state: UnsafeMutablePointer<Storage>
    var deferredList: Int32 { Int32(truncatingIfNeeded: slotCount) }
    /// Timers taken off the wheel for the tick being fired, with their generation.
    var due: [TimerID] = []
    /// Handlers of the kinds registered on this wheel; kind k is `handlers[k - 1]`.
    var handlers: [any TimerHandler] = []

    @inline(__always) var heads: UnsafeMutablePointer<Int32> { state.pointee.heads }
    @inline(__always) var entries: UnsafeMutablePointer<Entry> { state.pointee.entries }
    @inline(__always) var actions: UnsafeMutablePointer<(() -> Void)?> { state.pointee.actions }
    @inline(__always) var freeHead: Int32 {
        get { state.pointee.freeHead }
        set { state.pointee.freeHead = newValue }
    }
    @inline(__always) var cursor: UInt64 {
        get { state.pointee.cursor }
        set { state.pointee.cursor = newValue }
    }
    @inline(__always) var sequence: UInt64 {
        get { state.pointee.sequence }
        set { state.pointee.sequence = newValue }
    }
    @inline(__always) var wheelCount: Int {
        get { state.pointee.wheelCount }
        set { state.pointee.wheelCount = newValue }
    }
    @inline(__always) var running: Bool {
        get { state.pointee.running }
        set { state.pointee.running = newValue }
    }
    @inline(__always) var firingTick: UInt64 {
        get { state.pointee.firingTick }
        set { state.pointee.firingTick = newValue }
    }
    @inline(__always) var cachedNextDeadline: UInt64? {
        get { state.pointee.cachedNextDeadline }
        set { state.pointee.cachedNextDeadline = newValue }
    }
    @inline(__always) var nextDeadlineIsCached: Bool {
        get { state.pointee.nextDeadlineIsCached }
        set { state.pointee.nextDeadlineIsCached = newValue }
    }

    /// Timers scheduled and not yet fired or cancelled.
    public internal(set) var pending: Int {
        get { state.pointee.pending }
        set { state.pointee.pending = newValue }
    }

    /// A wheel of `slots` buckets of `tick` nanoseconds each (defaults: 1 ms × 4096, one
    /// revolution ≈ 4.1 s), starting at `clock`'s current time.
    public init(clock: any DatapathClock, tick: Duration = .milliseconds(1), slots: Int = 4096) {
        let tick = tick.nanoseconds
        precondition(tick > 0, "TimerWheel tick must be positive")
        precondition(slots >= 1 && slots & (slots - 1) == 0 && slots < Int(Int32.max),
                     "TimerWheel slot count must be a power of two, got \(slots)")
        self.clock = clock
        self.tickNanoseconds = tick
        self.slotCount = slots
        self.mask = slots - 1
        let heads = UnsafeMutablePointer<Int32>.allocate(capacity: slots + 1)
        heads.initialize(repeating: -1, count: slots + 1)
        let capacity = 64
        let entries = UnsafeMutablePointer<Entry>.allocate(capacity: capacity)
        let actions = UnsafeMutablePointer<(() -> Void)?>.allocate(capacity: capacity)
        state = .allocate(capacity: 1)
        state.initialize(to: Storage(heads: heads, entries: entries, actions: actions, capacity: capacity,
                                   cursor: clock.now() / tickNanoseconds))
    }

    deinit {
        let current = state.pointee
        current.heads.deallocate()
        current.entries.deinitialize(count: current.count)
        current.entries.deallocate()
        current.actions.deinitialize(count: current.count)
        current.actions.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    // MARK: Scheduling

    /// Runs `action` once, `delay` from the clock's current time (a negative delay is 0).
    @discardableResult
    public func schedule(after delay: Duration, _ action: @escaping () -> Void) -> TimerID {
        let (deadline, overflow) = clock.now().addingReportingOverflow(delay.nanoseconds)
        return schedule(at: overflow ? .max : deadline, action)
    }

    /// Runs `action` once, at the first `run` whose time is ≥ `deadline` (nanoseconds on the
    /// wheel's clock). A deadline in the past fires on the next `run`.
    @discardableResult
    public func schedule(at deadline: UInt64, _ action: @escaping () -> Void) -> TimerID {
        let id = insert(at: deadline, kind: 0, context: 0)
        actions[Int(id.index)] = action
        return id
    }

    // MARK: Embedded timers (Linux: `timer_list`)

    /// Registers what fires timers of a new kind on this wheel (before the worker runs, or on
    /// the worker's own thread); the wheel keeps `handler`.
    public func register(_ handler: any TimerHandler) -> TimerKind {
        precondition(handlers.count < Int(UInt16.max), "TimerWheel: too many timer kinds")
        handlers.append(handler)
        return TimerKind(rawValue: UInt16(handlers.count))
    }

    /// Arms `timer` to fire at `deadline`, moving it if it was pending (Linux: `mod_timer`).
    /// Returns whether it was pending. Allocates nothing once the wheel's storage has grown
    /// to the number of timers pending at once.
    @discardableResult
    public func arm(_ timer: inout WheelTimer, at deadline: UInt64) -> Bool {
        precondition(timer.kind.rawValue >= 1 && Int(timer.kind.rawValue) <= handlers.count,
                     "WheelTimer of a kind not registered on this wheel")
        let wasPending = cancel(&timer)
        timer.id = insert(at: deadline, kind: timer.kind.rawValue, context: timer.context)
        return wasPending
    }

    /// Arms `timer` to fire `delay` from now (Linux: `mod_timer(t, jiffies + d)`; a negative
    /// delay is 0).
    @discardableResult
    public func arm(_ timer: inout WheelTimer, after delay: Duration) -> Bool {
        let (deadline, overflow) = clock.now().addingReportingOverflow(delay.nanoseconds)
        return arm(&timer, at: overflow ? .max : deadline)
    }

    /// Stops `timer` if pending; returns whether it was (Linux: `timer_delete`).
    @discardableResult
    public func cancel(_ timer: inout WheelTimer) -> Bool {
        guard let id = timer.id else { return false }
        timer.id = nil
        return cancel(id)
    }

    /// Whether `timer` is armed and has not fired (Linux: `timer_pending`).
    public func isPending(_ timer: WheelTimer) -> Bool {
        guard let id = timer.id else { return false }
        let i = Int(id.index)
        return i < state.pointee.count && entries[i].generation == id.generation
            && (entries[i].state == .wheel || entries[i].state == .deferred || entries[i].state == .firing)
    }

    /// The deadline `timer` is armed for, nil when it is not pending.
    public func deadline(of timer: WheelTimer) -> UInt64? {
        isPending(timer) ? entries[Int(timer.id!.index)].deadline : nil
    }

    func insert(at deadline: UInt64, kind: UInt16, context: UInt64) -> TimerID {
        let index = allocate()
        let i = Int(index)
        sequence &+= 1
        entries[i].deadline = deadline
        entries[i].sequence = sequence
        entries[i].kind = kind
        entries[i].context = context
        let ownTick = deadline / tickNanoseconds
        if running && ownTick <= firingTick {
            entries[i].tick = ownTick
            entries[i].state = .deferred
            link(index, on: deferredList)
        } else {
            insertOnWheel(index, tick: max(ownTick, cursor))
        }
        pending += 1
        if nextDeadlineIsCached {
            cachedNextDeadline = min(cachedNextDeadline ?? .max, deadline)
        }
        return TimerID(index: index, generation: entries[i].generation)
    }

    /// Cancels a timer that has not fired yet; true if it was pending. Cancelling a timer
    /// that already fired or was cancelled returns false and changes nothing. O(1).
    @discardableResult
    public func cancel(_ id: TimerID) -> Bool {
        let i = Int(id.index)
        guard i >= 0 && i < state.pointee.count, entries[i].generation == id.generation else { return false }
        switch entries[i].state {
        case .free:
            return false
        case .wheel:
            unlink(id.index)
            wheelCount -= 1
        case .deferred:
            unlink(id.index)
        case .firing:
            break  // listed in `due`; the generation check there skips it once it is freed
        }
        if nextDeadlineIsCached && cachedNextDeadline == entries[i].deadline {
            nextDeadlineIsCached = false
        }
        release(id.index)
        pending -= 1
        return true
    }

    /// The earliest deadline among pending timers (possibly already past), nil when none:
    /// how long an event loop may sleep before the next `run`.
    public var nextDeadline: UInt64? {
        if !nextDeadlineIsCached {
            cachedNextDeadline = computeNextDeadline()
            nextDeadlineIsCached = true
        }
        return cachedNextDeadline
    }

    // MARK: Firing

    /// Fires every timer whose deadline is ≤ `now` (default: the clock's current time), in
    /// deadline order, and returns how many fired. Cheap when nothing is due: one comparison
    /// against the cached next deadline. Calling `run` from inside an action does nothing.
    @discardableResult
    public func run(now explicitNow: UInt64? = nil) -> Int {
        guard !running else { return 0 }
        let now = explicitNow ?? clock.now()
        let nowTick = now / tickNanoseconds
        if pending == 0 || (nextDeadline ?? .max) > now {
            // Nothing is due, so every timer's tick is ≥ nowTick and the cursor may move up.
            if nowTick > cursor { cursor = nowTick }
            return 0
        }

        running = true
        nextDeadlineIsCached = false
        var fired = 0
        var t = cursor
        var idleTicks = 0
        while t <= nowTick && wheelCount > 0 {
            if idleTicks >= slotCount {
                // A whole revolution with nothing due: jump to the earliest occupied tick.
                let earliest = earliestWheelTick()
                if earliest > nowTick { break }
                t = max(t, earliest)
                idleTicks = 0
            }
            cursor = t
            firingTick = t
            collectDue(tick: t, now: now)
            if due.isEmpty {
                idleTicks += 1
            } else {
                idleTicks = 0
                fired += fireDue()
            }
            if t == nowTick { break }
            t &+= 1
        }
        if nowTick > cursor { cursor = nowTick }
        rejoinDeferred()
        running = false
        nextDeadlineIsCached = false
        return fired
    }

    /// Unlinks the timers of bucket `t` that are due by `now` into `due`, sorted by deadline
    /// then scheduling order.
    func collectDue(tick t: UInt64, now: UInt64) {
        let bucket = Int32(truncatingIfNeeded: Int(truncatingIfNeeded: t) & mask)
        var index = heads[Int(bucket)]
        while index >= 0 {
            let i = Int(index)
            let next = entries[i].next
            if entries[i].tick <= t && entries[i].deadline <= now {
                unlink(index)
                wheelCount -= 1
                entries[i].state = .firing
                due.append(TimerID(index: index, generation: entries[i].generation))
            }
            index = next
        }
        if due.count > 1 {
            due.sort { a, b in
                let x = entries[Int(a.index)], y = entries[Int(b.index)]
                return x.deadline != y.deadline ? x.deadline < y.deadline : x.sequence < y.sequence
            }
        }
    }

    /// Fires `due` in order, skipping timers an earlier action cancelled, and empties it.
    func fireDue() -> Int {
        var fired = 0
        var k = 0
        while k < due.count {
            let id = due[k]
            k += 1
            let i = Int(id.index)
            guard entries[i].generation == id.generation && entries[i].state == .firing else { continue }
            let kind = Int(entries[i].kind), context = entries[i].context
            let action = kind == 0 ? actions[i] : nil
            // Free first: the action may schedule (reusing this entry) or cancel itself.
            release(id.index)
            pending -= 1
            fired += 1
            if kind == 0 {
                action?()
            } else {
                handlers[kind - 1].timerFired(TimerKind(rawValue: UInt16(kind)), context: context, wheel: self)
            }
        }
        due.removeAll(keepingCapacity: true)
        return fired
    }

    /// Puts timers scheduled for already-fired ticks back on the wheel at the cursor.
    func rejoinDeferred() {
        var index = heads[Int(deferredList)]
        while index >= 0 {
            let i = Int(index)
            let next = entries[i].next
            unlink(index)
            insertOnWheel(index, tick: max(entries[i].tick, cursor))
            index = next
        }
    }

    // MARK: Storage

    func allocate() -> Int32 {
        if freeHead >= 0 {
            let index = freeHead
            freeHead = entries[Int(index)].next
            return index
        }
        precondition(state.pointee.count < Int(Int32.max), "TimerWheel: too many timers")
        if state.pointee.count == state.pointee.capacity { grow() }
        let index = state.pointee.count
        (entries + index).initialize(to: Entry(deadline: 0, tick: 0, sequence: 0, previous: -1, next: -1, list: -1,
                                               generation: 0, state: .free, kind: 0, context: 0))
        (actions + index).initialize(to: nil)
        state.pointee.count = index + 1
        return Int32(truncatingIfNeeded: index)
    }

    /// Doubles the entry storage (only while the number of timers pending at once grows).
    func grow() {
        let count = state.pointee.count
        let bigger = state.pointee.capacity * 2
        let newEntries = UnsafeMutablePointer<Entry>.allocate(capacity: bigger)
        let newActions = UnsafeMutablePointer<(() -> Void)?>.allocate(capacity: bigger)
        newEntries.moveInitialize(from: entries, count: count)
        newActions.moveInitialize(from: actions, count: count)
        entries.deallocate()
        actions.deallocate()
        state.pointee.entries = newEntries
        state.pointee.actions = newActions
        state.pointee.capacity = bigger
    }

    func release(_ index: Int32) {
        let i = Int(index)
        entries[i].state = .free
        entries[i].generation &+= 1
        entries[i].list = -1
        entries[i].previous = -1
        entries[i].next = freeHead
        actions[i] = nil
        freeHead = index
    }

    func insertOnWheel(_ index: Int32, tick: UInt64) {
        let i = Int(index)
        entries[i].tick = tick
        entries[i].state = .wheel
        link(index, on: Int32(truncatingIfNeeded: Int(truncatingIfNeeded: tick) & mask))
        wheelCount += 1
    }

    func link(_ index: Int32, on list: Int32) {
        let i = Int(index)
        let first = heads[Int(list)]
        entries[i].list = list
        entries[i].previous = -1
        entries[i].next = first
        if first >= 0 { entries[Int(first)].previous = index }
        heads[Int(list)] = index
    }

    func unlink(_ index: Int32) {
        let i = Int(index)
        let previous = entries[i].previous, next = entries[i].next
        if previous >= 0 { entries[Int(previous)].next = next } else { heads[Int(entries[i].list)] = next }
        if next >= 0 { entries[Int(next)].previous = previous }
        entries[i].previous = -1
        entries[i].next = -1
        entries[i].list = -1
    }

    /// The smallest tick of any timer on the wheel (`UInt64.max` when none). O(storage).
    func earliestWheelTick() -> UInt64 {
        var earliest = UInt64.max
        for i in 0..<state.pointee.count where entries[i].state == .wheel && entries[i].tick < earliest {
            earliest = entries[i].tick
        }
        return earliest
    }

    /// The earliest deadline among timers on the wheel or deferred. Timers of one tick all
    /// precede those of later ticks, so the first occupied tick within a revolution of the
    /// cursor holds the answer; failing that, every timer is looked at.
    func computeNextDeadline() -> UInt64? {
        var best: UInt64?
        var index = heads[Int(deferredList)]
        while index >= 0 {
            best = min(best ?? .max, entries[Int(index)].deadline)
            index = entries[Int(index)].next
        }
        guard wheelCount > 0 else { return best }
        var t = cursor
        for _ in 0..<slotCount {
            var found: UInt64?
            index = heads[Int(truncatingIfNeeded: t) & mask]
            while index >= 0 {
                let entry = entries[Int(index)]
                if entry.tick <= t { found = min(found ?? .max, entry.deadline) }
                index = entry.next
            }
            if let found { return min(best ?? .max, found) }
            t &+= 1
        }
        for i in 0..<state.pointee.count where entries[i].state == .wheel { best = min(best ?? .max, entries[i].deadline) }
        return best
    }
}

@available(*, unavailable, message: "a TimerWheel belongs to one worker thread")
extension TimerWheel: Sendable {}

/// A kind of timer registered on a wheel: which handler its timers fire.
public struct TimerKind: Hashable, Sendable {
    public let rawValue: UInt16

    /// The kind of a timer whose owner has not registered its handler yet; arming it is a
    /// precondition failure.
    public static let unregistered = TimerKind(rawValue: 0)
}

/// What timers of one kind do when they fire (Linux: a `timer_list`'s `function`): the owner
/// is found from the context word (a slab index, a queue number). Called on the wheel's
/// worker, from `run`; it may re-arm the timer.
public protocol TimerHandler: AnyObject {
    func timerFired(_ kind: TimerKind, context: UInt64, wheel: TimerWheel)
}

/// A timer embedded in its owner (Linux: `struct timer_list`): a kind and a context word set
/// once, and while pending its place on the wheel. Arm, re-arm and cancel it through the wheel
/// of the worker its owner lives on (`TimerWheel.arm`, `cancel`, `isPending`).
public struct WheelTimer: Sendable {
    public let kind: TimerKind
    /// Passed to the handler: whatever finds the owner.
    public var context: UInt64
    var id: TimerID?

    public init(kind: TimerKind, context: UInt64 = 0) {
        self.kind = kind
        self.context = context
    }
}
