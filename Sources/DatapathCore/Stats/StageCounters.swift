import CDatapath
import Synchronization

/// A named stage of the datapath, for VPP-style `show runtime` accounting.
public struct StageID: Hashable, Sendable {
    public let rawValue: Int

    /// Stage names, registered once at start-up; the index is the stage's counter slot.
    static let names = Lock<[String]>([])
    @inlinable public static var maximumCount: Int { 64 }

    /// Registers (or finds) a stage by name.
    public static func named(_ name: String) -> StageID {
        names.withLock { names in
            if let i = names.firstIndex(of: name) { return StageID(rawValue: i) }
            precondition(names.count < maximumCount, "more than \(maximumCount) stages")
            names.append(name)
            return StageID(rawValue: names.count - 1)
        }
    }

    public var name: String { StageID.names.withLock { $0[rawValue] } }
    public static var all: [StageID] {
        names.withLock { $0.indices.map { StageID(rawValue: $0) } }
    }

    public init(rawValue: Int) { self.rawValue = rawValue }
}

/// One worker's per-stage calls, packets and cycles (VPP: `show runtime`).
public final class StageCounters: @unchecked Sendable {
    public let block = CounterBlock(count: StageID.maximumCount * 3)
    public init() {}

    /// Records one call of `stage` over `packets` packets that took `cycles`.
    @inlinable @inline(__always)
    public func record(_ stage: StageID, packets: Int, cycles: UInt64) {
        let base = stage.rawValue &* 3
        block.add(base, 1)
        block.add(base &+ 1, UInt64(truncatingIfNeeded: packets))
        block.add(base &+ 2, cycles)
    }

    public func calls(_ stage: StageID) -> UInt64 { block[stage.rawValue * 3] }
    public func packets(_ stage: StageID) -> UInt64 { block[stage.rawValue * 3 + 1] }
    public func cycles(_ stage: StageID) -> UInt64 { block[stage.rawValue * 3 + 2] }
}

/// The cycle counter stages time themselves with.
@inlinable @inline(__always)
public func cycleCount() -> UInt64 { CDatapath_cycles() }
