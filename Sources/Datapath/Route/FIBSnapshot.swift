import DatapathCore
import DatapathWire

/// An immutable longest-prefix-match table over a FIB's routes (DESIGN.md §6), built whole by
/// the control plane and read by workers without a lock: a multibit trie with strides 16-8-8
/// (the DIR-24-8 idea with a 256 KiB first level). A lookup is one, two or three dependent
/// loads. Each slot is a leaf — the index of the best route + 1, 0 for none — or, with the top
/// bit set, the number of a 256-slot group one level down.
public final class FIBSnapshot: @unchecked Sendable {
    /// The routes the leaves point at (the best per prefix), index 0 unused.
    public let routes: [Route]
    /// Bumped on every rebuild: route caches compare it to invalidate in O(1).
    public let generation: UInt64
    @usableFromInline let level1: UnsafeMutablePointer<UInt32>
    @usableFromInline let groups: UnsafeMutablePointer<UInt32>
    public let groupCount: Int
    let level1Memory: LargeMemory
    let groupMemory: LargeMemory

    @usableFromInline static let groupFlag: UInt32 = 1 << 31

    /// Builds the trie for `routes` (already reduced to one route per prefix).
    init(routes best: [Route], generation: UInt64) {
        self.generation = generation
        self.routes = [Route(prefix: IPv4Prefix(address: .zero, length: 0)!, type: .blackhole)] + best
        level1Memory = LargeMemory(bytes: 65536 * 4)
        level1 = level1Memory.base.bindMemory(to: UInt32.self, capacity: 65536)
        // Shorter prefixes first, so longer ones paint over them; equal lengths never overlap.
        let order = best.indices.sorted { best[$0].prefix.length < best[$1].prefix.length }
        var builder = GroupBuilder()
        for index in order {
            let route = best[index]
            let leaf = UInt32(index + 1)
            let address = route.prefix.address.hostOrder
            let length = route.prefix.length
            if length <= 16 {
                let first = Int(address >> 16)
                (level1 + first).update(repeating: leaf, count: 1 << (16 - length))
                continue
            }
            let group2 = builder.group(below: level1 + Int(address >> 16))
            let slot2 = Int((address >> 8) & 0xFF)
            if length <= 24 {
                builder.paint(group2, from: slot2, count: 1 << (24 - length), leaf: leaf)
                continue
            }
            let group3 = builder.group(belowSlot: slot2, of: group2)
            builder.paint(group3, from: Int(address & 0xFF), count: 1 << (32 - length), leaf: leaf)
        }
        groupCount = builder.slots.count / 256
        let slotCount = max(256, builder.slots.count)
        groupMemory = LargeMemory(bytes: slotCount * 4)
        groups = groupMemory.base.bindMemory(to: UInt32.self, capacity: slotCount)
        builder.slots.withUnsafeBufferPointer { groups.update(from: $0.baseAddress!, count: $0.count) }
    }

    deinit {
        level1Memory.deallocate()
        groupMemory.deallocate()
    }

    /// The index into `routes` of the longest prefix holding `destination` (host order);
    /// 0 when none does.
    @inlinable @inline(__always)
    public func lookupIndex(_ destination: UInt32) -> Int {
        var entry = level1[Int(destination >> 16)]
        if entry & FIBSnapshot.groupFlag != 0 {
            entry = groups[Int(entry & ~FIBSnapshot.groupFlag) &<< 8 | Int((destination >> 8) & 0xFF)]
            if entry & FIBSnapshot.groupFlag != 0 {
                entry = groups[Int(entry & ~FIBSnapshot.groupFlag) &<< 8 | Int(destination & 0xFF)]
            }
        }
        return Int(entry)
    }

    /// The route for `destination`, if any (Linux: `fib_lookup`).
    @inlinable
    public func lookup(_ destination: IPv4Address) -> Route? {
        let index = lookupIndex(destination.hostOrder)
        return index == 0 ? nil : routes[index]
    }

    /// Bytes the trie takes.
    public var memoryBytes: Int { 65536 * 4 + max(256, groupCount * 256) * 4 }

    /// Collects groups in a growable array while building.
    struct GroupBuilder {
        var slots: [UInt32] = []

        /// The group a level-1 slot points at, made (filled with the slot's leaf) if it is a leaf.
        mutating func group(below slot: UnsafeMutablePointer<UInt32>) -> Int {
            if slot.pointee & FIBSnapshot.groupFlag != 0 { return Int(slot.pointee & ~FIBSnapshot.groupFlag) }
            let number = make(filledWith: slot.pointee)
            slot.pointee = FIBSnapshot.groupFlag | UInt32(number)
            return number
        }

        /// The level-3 group below slot `slot` of group `group`, made if that slot is a leaf.
        mutating func group(belowSlot slot: Int, of group: Int) -> Int {
            let entry = slots[group * 256 + slot]
            if entry & FIBSnapshot.groupFlag != 0 { return Int(entry & ~FIBSnapshot.groupFlag) }
            let number = make(filledWith: entry)
            slots[group * 256 + slot] = FIBSnapshot.groupFlag | UInt32(number)
            return number
        }

        mutating func make(filledWith leaf: UInt32) -> Int {
            let number = slots.count / 256
            slots.append(contentsOf: repeatElement(leaf, count: 256))
            return number
        }

        /// Fills `count` slots of `group` with `leaf`. Prefixes arrive shortest first, so the
        /// slots are leaves here: deeper groups only appear for longer prefixes, later.
        mutating func paint(_ group: Int, from first: Int, count: Int, leaf: UInt32) {
            let base = group * 256 + first
            for slot in base..<(base + count) { slots[slot] = leaf }
        }
    }
}
