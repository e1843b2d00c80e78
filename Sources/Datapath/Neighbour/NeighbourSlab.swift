import DatapathCore
import Synchronization

/// A reference to a neighbour entry that routing results, dst entries and skbs carry instead of
/// a counted pointer (Linux holds `struct neighbour *` with `neigh_hold`/`neigh_release`): the
/// entry's slot in the table's slab and the slot's generation. A handle to an entry that left
/// the table finds nothing (`NeighbourTable.entry(_:)` is nil), however long it was kept.
///
/// Layout of `rawValue`: generation << 32 | slot << 2. The generation is never 0, so no handle
/// is 0 or 1 (0 means "none" where a raw word is stored); the low two bits are free for a
/// holder's tags.
@frozen
package struct NeighbourHandle: Hashable, Sendable {
    public let rawValue: UInt64

    @inlinable
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    @inlinable
    init(slot: Int, generation: UInt32) {
        rawValue = UInt64(generation) << 32 | UInt64(truncatingIfNeeded: slot) << 2
    }

    @inlinable var slot: Int { Int(truncatingIfNeeded: (rawValue & 0xFFFF_FFFF) >> 2) }
    @inlinable var generation: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }
}

/// The neighbour table's entries by slot (the one owner of every `Neighbour`): fixed capacity,
/// a generation per slot, and slots reused only after a grace period (`Quiescence`), so a
/// worker reading an entry through a handle without the table's lock never meets a slot that
/// is being refilled. Changed only under the table's lock; read by workers without it.
@safe final class NeighbourSlab: @unchecked Sendable {
    let capacity: Int
    /// Per slot, its generation (workers load it atomically before trusting the slot).
    let generations: UnsafeMutablePointer<UInt32>
    /// Per slot, its entry — still there after it left the table, until the slot is reused.
    let entries: UnsafeMutablePointer<Neighbour?>
    let quiescence: Quiescence
    /// Slots never used yet: `fresh..<capacity`.
    var fresh = 0
    /// Freed slots in the order they were freed, each with the grace period it waits for.
    var retired: [(slot: Int, ticket: UInt64)] = []
    var retiredHead = 0

    init(capacity: Int, quiescence: Quiescence) {
        precondition(capacity > 0 && capacity < 1 << 30, "neighbour slab capacity out of range")
        self.capacity = capacity
        self.quiescence = quiescence
        unsafe generations = .allocate(capacity: capacity)
        unsafe generations.initialize(repeating: 1, count: capacity)
        unsafe entries = .allocate(capacity: capacity)
        unsafe entries.initialize(repeating: nil, count: capacity)
    }

    deinit {
        unsafe generations.deallocate()
        unsafe entries.deinitialize(count: capacity)
        unsafe entries.deallocate()
    }

    /// A slot for a new entry, or nil when every slot is taken or still in its grace period.
    /// `make` builds the entry for its handle. Under the table's lock.
    func allocate(_ make: (NeighbourHandle) -> Neighbour) -> Neighbour? {
        let slot: Int
        if fresh < capacity {
            slot = fresh
            fresh += 1
        } else if retiredHead < retired.count, quiescence.hasElapsed(retired[retiredHead].ticket) {
            slot = retired[retiredHead].slot
            retiredHead += 1
            if retiredHead > 64 && retiredHead * 2 > retired.count {
                retired.removeFirst(retiredHead)
                retiredHead = 0
            }
        } else {
            return nil
        }
        let neighbour = unsafe make(NeighbourHandle(slot: slot, generation: SharedWord.load(generations + slot)))
        unsafe entries[slot] = neighbour
        return neighbour
    }

    /// Frees `neighbour`'s slot: its handles find nothing from now on; the slot is reused once
    /// every worker has passed a quiescent state. Under the table's lock.
    func release(_ neighbour: Neighbour) {
        let slot = neighbour.handle.slot
        guard unsafe SharedWord.load(generations + slot) == neighbour.handle.generation else { return }
        var next = neighbour.handle.generation &+ 1
        if next == 0 { next = 1 }
        unsafe SharedWord.store(generations + slot, next)
        retired.append((slot, quiescence.retire()))
    }

    /// The entry `handle` names, nil when it left the table (workers, without the lock).
    @inline(__always)
    func entry(_ handle: NeighbourHandle) -> Neighbour? {
        let slot = handle.slot
        guard slot < capacity, unsafe SharedWord.load(generations + slot) == handle.generation else { return nil }
        return unsafe entries[slot]
    }
}
