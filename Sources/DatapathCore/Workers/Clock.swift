#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Atomics

/// A source of monotonic time in nanoseconds (Linux: the role of `jiffies` /
/// `ktime_get()` for timers and ageing). Workers read it once per loop, not per packet.
/// The zero point is arbitrary; only differences mean anything.
public protocol DatapathClock: AnyObject, Sendable {
    /// Nanoseconds since an arbitrary fixed point; never decreases.
    func now() -> UInt64
}

/// The system's monotonic clock (`CLOCK_MONOTONIC`, which does not jump when the wall clock
/// is set). About 20 ns per read through the vDSO.
public final class MonotonicClock: DatapathClock {
    public init() {}

    public func now() -> UInt64 {
        var time = timespec()
        // Cannot fail for CLOCK_MONOTONIC with a valid pointer.
        _ = clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}

/// A clock that moves only when told to, for tests and simulations. Thread-safe: any thread
/// may read or move it.
public final class VirtualClock: DatapathClock {
    let value: ManagedAtomic<UInt64>

    /// Starts at `start` nanoseconds.
    public init(start: UInt64 = 0) {
        value = ManagedAtomic(start)
    }

    public func now() -> UInt64 { value.load(ordering: .acquiring) }

    /// Moves the clock forward by `duration` (saturating at `UInt64.max` nanoseconds; a
    /// negative duration leaves it where it is).
    public func advance(by duration: Duration) {
        advance(nanoseconds: duration.nanoseconds)
    }

    /// Moves the clock forward by `nanoseconds` (saturating at `UInt64.max`).
    public func advance(nanoseconds: UInt64) {
        var current = value.load(ordering: .relaxed)
        while true {
            let (sum, overflow) = current.addingReportingOverflow(nanoseconds)
            let next = overflow ? UInt64.max : sum
            let (exchanged, original) = value.weakCompareExchange(
                expected: current, desired: next, successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Sets the clock to `nanoseconds`. A monotonic clock never goes back; `set` trusts the
    /// caller to keep it that way.
    public func set(_ nanoseconds: UInt64) {
        value.store(nanoseconds, ordering: .releasing)
    }
}

/// Conversions to the nanosecond counts that clocks and timers use.
package enum Nanoseconds {
    /// `s` seconds in nanoseconds, rounded to the nearest; negative is 0, huge saturates.
    public static func seconds(_ s: Double) -> UInt64 {
        let ns = (s * 1e9).rounded()
        guard ns > 0 else { return 0 }
        guard ns < 0x1p64 else { return .max }
        return UInt64(ns)
    }

    /// `ms` milliseconds in nanoseconds (saturating).
    public static func milliseconds(_ ms: UInt64) -> UInt64 { saturatingMultiply(ms, 1_000_000) }

    /// `us` microseconds in nanoseconds (saturating).
    public static func microseconds(_ us: UInt64) -> UInt64 { saturatingMultiply(us, 1_000) }

    static func saturatingMultiply(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? .max : product
    }
}

extension Duration {
    /// The duration in nanoseconds, as the datapath's clocks count (`DatapathClock.now()`):
    /// negative is 0, more than `UInt64.max` nanoseconds (584 years) saturates.
    @inlinable
    public var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 && (seconds > 0 || attoseconds > 0) else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (total, carry) = whole.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        return overflow || carry ? .max : total
    }
}
