import CDatapath

/// One worker's cache of free pool elements (Linux: a per-CPU slab cache). Single-threaded:
/// only its worker calls it. Refills from and drains to the pool's shared stack `batch`
/// elements at a time, so the shared lock is taken once per batch.
///
/// Only `let` stored properties: a `var` on a class pays a dynamic exclusivity check per access.
public final class PoolCache: @unchecked Sendable {
    public unowned(unsafe) let pool: PacketPool
    @usableFromInline let slots: UnsafeMutablePointer<UnsafeMutablePointer<SKBHead>>
    @usableFromInline let countStorage: UnsafeMutablePointer<Int>
    public let capacity: Int
    @usableFromInline let batch: Int
    @usableFromInline let poolID: UInt16
    @usableFromInline let headroom: Int
    @usableFromInline let template: UnsafeRawPointer

    init(pool: PacketPool, capacity: Int, batch: Int) {
        self.pool = pool
        self.capacity = max(capacity, 2 * batch)
        self.batch = batch
        self.poolID = pool.id
        self.headroom = pool.headroom
        self.template = UnsafeRawPointer(pool.template)
        slots = .allocate(capacity: self.capacity)
        countStorage = .allocate(capacity: 1)
        countStorage.initialize(to: 0)
    }

    /// The pool keeps its caches (and counts their elements as free), so nothing drains here:
    /// the pool may already be going away.
    deinit {
        slots.deallocate()
        countStorage.deallocate()
    }

    /// Free elements held here. Only the cache's worker changes the count, but the pool's
    /// `freeCount` reads it from any thread (statistics), so its stores and this load are
    /// relaxed atomics: plain moves, and no data race.
    public var count: Int { SharedWord.loadRelaxed(countStorage) }

    // MARK: allocation

    /// One skb with the pool's headroom reserved and no data (Linux: `alloc_skb` +
    /// `skb_reserve`), or nil when the pool is exhausted.
    @inlinable
    public func allocate() -> SKB? {
        var n = countStorage.pointee
        if n == 0 {
            n = refill()
            if n == 0 { return nil }
        }
        n &-= 1
        SharedWord.storeRelaxed(countStorage, n)
        let head = slots[n]
        initialize(head)
        return SKB(head)
    }

    /// Exactly `count` skbs into `destination`, or none at all (DPDK's bulk: all or nothing).
    @inlinable
    public func allocateBulk(_ destination: UnsafeMutablePointer<SKB>, count: Int) -> Bool {
        var n = countStorage.pointee
        while n < count {
            let before = n
            n = refill()
            if n == before || n == 0 { return false }
        }
        if n < count { return false }
        n &-= count
        let fresh = HeaderTemplate(loading: template)  // in registers for the whole batch
        var i = 0
        while i < count {
            let head = slots[n &+ i]
            fresh.stamp(head, headroom: headroom)
            destination[i] = SKB(head)
            i &+= 1
        }
        SharedWord.storeRelaxed(countStorage, n)
        return true
    }

    /// Resets a free element to a fresh skb from the pool's template.
    @inlinable @inline(__always)
    func initialize(_ head: UnsafeMutablePointer<SKBHead>) {
        HeaderTemplate(loading: template).stamp(head, headroom: headroom)
    }

    /// Pulls a batch from the shared stack; returns the new count.
    @usableFromInline @inline(never)
    func refill() -> Int {
        let n = countStorage.pointee
        let got = pool.takeShared(slots + n, max: min(batch, capacity - n))
        SharedWord.storeRelaxed(countStorage, n + got)
        return n + got
    }

    @usableFromInline @inline(never)
    func drain() {
        let n = countStorage.pointee
        let give = min(batch, n)
        pool.giveShared(slots + (n - give), count: give)
        SharedWord.storeRelaxed(countStorage, n - give)
    }

    /// Returns every cached element to the shared stack (a worker stopping).
    public func drainAll() {
        let n = countStorage.pointee
        if n > 0 { pool.giveShared(slots, count: n) }
        SharedWord.storeRelaxed(countStorage, 0)
    }

    // MARK: freeing

    /// Frees an skb (Linux: `kfree_skb` / `consume_skb`). A clone releases its share of the
    /// data; the data (and its ring block) goes back when the last reference does.
    @inlinable
    public func free(_ skb: SKB) {
        let head = skb.head
        if PoolCache.isPrivate(head, ownWord: PoolCache.ownershipWord(poolID: poolID)) {
            recycle(head)
        } else {
            freeSlow(head)
        }
    }

    /// Frees every skb in `batch` and empties it. The common case — private pool skbs of this
    /// cache's pool, with room for all of them here — is three loads and two stores per skb;
    /// the rest goes through `freeRest`.
    @inlinable
    public func free(_ batch: inout PacketBatch) {
        let n = batch.count
        let cached = countStorage.pointee
        var i = 0
        if n <= capacity &- cached {
            let skbs = batch.slots
            let slots = self.slots + cached
            let ownWord = PoolCache.ownershipWord(poolID: poolID)
            while i < n {
                let head = skbs[i].head
                guard PoolCache.isPrivate(head, ownWord: ownWord) else { break }
                head.pointee.owner = .free
                slots[i] = head
                i &+= 1
            }
            SharedWord.storeRelaxed(countStorage, cached &+ i)
        }
        if i < n { freeRest(&batch, from: i) }
        batch.count = 0
    }

    /// `free(_:)` from `start` on, one skb at a time: draining to the shared stack when the
    /// cache is full; consecutive skbs from one ring block release the block with a single
    /// atomic operation.
    @usableFromInline @inline(never)
    func freeRest(_ batch: inout PacketBatch, from start: Int) {
        var i = start
        let n = batch.count
        while i < n {
            let skb = batch[i]
            let head = skb.head
            if PoolCache.hasSoleReference(skb), let reference = head.pointee.ringReference {
                var run: UInt32 = 1
                recycleHead(head)
                i &+= 1
                while i < n, batch[i].head.pointee.ringReference == reference, PoolCache.hasSoleReference(batch[i]) {
                    recycleHead(batch[i].head)
                    run &+= 1
                    i &+= 1
                }
                PoolCache.releaseRingReference(reference, count: run)
            } else {
                free(skb)
                i &+= 1
            }
        }
    }

    /// True when `skb` is neither a clone nor cloned: freeing it frees its data.
    @inlinable @inline(__always)
    static func hasSoleReference(_ skb: SKB) -> Bool {
        skb.head.pointee.dataOwner == nil && CDatapath_atomic_load_u32(skb.dataRefsPointer) == 1
    }

    /// `dataRefs` (== 1) and `poolID` as they sit together in the header's word at 0x40.
    @inlinable @inline(__always)
    static func ownershipWord(poolID: UInt16) -> UInt64 { UInt64(poolID) << 48 | 1 }

    /// True for an skb with a private buffer of the pool `ownWord` names: one reference, no
    /// data owner, not ring-backed. Reads the refcount/pool word and the two ownership
    /// pointers as three loads and one test (layout checked in `PacketPool.init`).
    @inlinable @inline(__always)
    static func isPrivate(_ head: UnsafeMutablePointer<SKBHead>, ownWord: UInt64) -> Bool {
        let raw = UnsafeRawPointer(head)
        let word = raw.load(fromByteOffset: 0x40, as: UInt64.self)
        let dataOwner = raw.load(fromByteOffset: 0x48, as: UInt64.self)
        let ringReference = raw.load(fromByteOffset: 0x50, as: UInt64.self)
        return (word & 0xFFFF_0000_FFFF_FFFF ^ ownWord) | dataOwner | ringReference == 0
    }

    @inlinable @inline(__always)
    func recycle(_ head: UnsafeMutablePointer<SKBHead>) {
        head.pointee.owner = .free
        var n = countStorage.pointee
        if n == capacity {
            drain()
            n = countStorage.pointee
        }
        slots[n] = head
        SharedWord.storeRelaxed(countStorage, n &+ 1)
    }

    /// Returns a head to its pool: here when it is ours, else to its pool's shared stack.
    @inlinable @inline(__always)
    func recycleHead(_ head: UnsafeMutablePointer<SKBHead>) {
        head.pointee.ringReference = nil
        if head.pointee.poolID == poolID {
            recycle(head)
        } else {
            recycleForeign(head)
        }
    }

    @usableFromInline @inline(never)
    func recycleForeign(_ head: UnsafeMutablePointer<SKBHead>) {
        head.pointee.owner = .free
        var h = head
        PacketPool.owning(head).giveShared(&h, count: 1)
    }

    @usableFromInline @inline(never)
    func freeSlow(_ head: UnsafeMutablePointer<SKBHead>) {
        assert(head.pointee.owner != .free, "double free of an skb")
        if let owner = head.pointee.dataOwner {
            head.pointee.dataOwner = nil
            recycleHead(head)
            releaseData(owner)
        } else {
            releaseData(head)
        }
    }

    /// Drops one reference to `owner`'s data; the last one frees the data and its head.
    @usableFromInline
    func releaseData(_ owner: UnsafeMutablePointer<SKBHead>) {
        let remaining = CDatapath_atomic_sub_u32(SKB(owner).dataRefsPointer, 1)
        guard remaining == 0 else { return }
        if let reference = owner.pointee.ringReference {
            PoolCache.releaseRingReference(reference, count: 1)
        }
        recycleHead(owner)
    }

    /// Drops `count` references to a ring block; the last hands the block back to the kernel.
    @inlinable
    static func releaseRingReference(_ reference: UnsafeMutablePointer<RingBlockReference>, count: UInt32) {
        let counter = UnsafeMutableRawPointer(reference).assumingMemoryBound(to: UInt32.self)
        if CDatapath_atomic_sub_u32(counter, count) == 0, let block = reference.pointee.block {
            CDatapath_block_release(block)
        }
    }

    // MARK: clone and copy

    /// A second skb sharing this one's data (Linux: `skb_clone`); nil when the pool is empty.
    /// Writers must not touch shared data: check `isShared` and `copy` first.
    public func clone(_ skb: SKB) -> SKB? {
        guard let clone = allocate() else { return nil }
        let owner = skb.head.pointee.dataOwner ?? skb.head
        _ = CDatapath_atomic_add_u32(SKB(owner).dataRefsPointer, 1)
        adoptHeader(of: skb, into: clone)
        clone.head.pointee.dataOwner = owner
        return clone
    }

    /// A private copy in pool memory, headroom and header offsets kept (Linux: `skb_copy`);
    /// nil when the pool is empty or the packet does not fit one buffer.
    public func copy(_ skb: SKB) -> SKB? {
        let used = skb.headroom + skb.length
        guard used <= pool.bufferSize, let copy = allocate() else { return nil }
        adoptHeader(of: skb, into: copy)
        let ownBuffer = copy.head.pointee.ownBuffer
        let ownSize = copy.head.pointee.ownBufferSize
        copy.head.pointee.bufferStart = ownBuffer
        copy.head.pointee.bufferSize = ownSize
        copy.head.pointee.data = ownBuffer + skb.headroom
        ownBuffer.copyMemory(from: skb.head.pointee.bufferStart, byteCount: used)
        return copy
    }

    /// A fresh skb with `source`'s metadata — devices, route and control words, mark, hash,
    /// packet type, protocol, timestamp — but its own empty buffer with the pool's headroom, no
    /// checksum state and no GSO: for packets made from another (GSO segments). Nil when the
    /// pool is empty.
    public func allocate(copyingMetadataOf source: SKB) -> SKB? {
        guard let skb = allocate() else { return nil }
        let fresh = skb.head.pointee
        adoptHeader(of: source, into: skb)
        skb.head.pointee.bufferStart = fresh.bufferStart
        skb.head.pointee.bufferSize = fresh.bufferSize
        skb.head.pointee.data = fresh.data
        skb.head.pointee.length = 0
        skb.head.pointee.macOffset = fresh.macOffset
        skb.head.pointee.networkOffset = fresh.networkOffset
        skb.head.pointee.transportOffset = fresh.transportOffset
        skb.head.pointee.checksumState = .none
        skb.head.pointee.checksumStart = 0
        skb.head.pointee.checksumOffset = 0
        skb.head.pointee.gsoSize = 0
        skb.head.pointee.gsoType = 0
        return skb
    }

    /// Gives `target` (freshly allocated) all of `source`'s header — data pointers, offsets,
    /// metadata — while it keeps its own element: buffer, pool, a single private reference.
    func adoptHeader(of source: SKB, into target: SKB) {
        let ownBuffer = target.head.pointee.ownBuffer
        let ownSize = target.head.pointee.ownBufferSize
        let poolID = target.head.pointee.poolID
        target.head.pointee = source.head.pointee
        target.head.pointee.next = nil
        target.head.pointee.ownBuffer = ownBuffer
        target.head.pointee.ownBufferSize = ownSize
        target.head.pointee.poolID = poolID
        target.head.pointee.owner = .allocated
        target.head.pointee.dataRefs = 1
        target.head.pointee.dataOwner = nil
        target.head.pointee.ringReference = nil
    }

    /// An skb whose data is in pool memory: `skb` itself when it already is and is not shared,
    /// else a copy (and `skb` is freed). For packets that outlive their receive batch
    /// (socket queues, reassembly, neighbour pending queues). Nil when no copy could be made;
    /// `skb` is freed then too.
    public func detachFromRing(_ skb: SKB) -> SKB? {
        if !skb.isRingBacked && !skb.isShared { return skb }
        let copy = copy(skb)
        free(skb)
        return copy
    }
}

/// A fresh skb's header bytes before `ownBuffer` (the pool's template), held in registers so
/// that a batch of allocations stamps them without reloading: the first 32 bytes are built
/// per element (`next` = nil, `data`, `bufferStart`, then length 0 and the buffer size), the
/// other 64 are the template's.
@usableFromInline
struct HeaderTemplate {
    @usableFromInline let sizes: UInt64
    @usableFromInline let t2, t3, t4, t5: SIMD16<UInt8>

    @inlinable @inline(__always)
    init(loading template: UnsafeRawPointer) {
        sizes = template.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        t2 = template.loadUnaligned(fromByteOffset: 32, as: SIMD16<UInt8>.self)
        t3 = template.loadUnaligned(fromByteOffset: 48, as: SIMD16<UInt8>.self)
        t4 = template.loadUnaligned(fromByteOffset: 64, as: SIMD16<UInt8>.self)
        t5 = template.loadUnaligned(fromByteOffset: 80, as: SIMD16<UInt8>.self)
    }

    /// Writes a fresh header over `head`: six 16-byte stores.
    @inlinable @inline(__always)
    func stamp(_ head: UnsafeMutablePointer<SKBHead>, headroom: Int) {
        let raw = UnsafeMutableRawPointer(head)
        let buffer = UInt64(UInt(bitPattern: head.pointee.ownBuffer))
        raw.storeBytes(of: SIMD2<UInt64>(0, buffer &+ UInt64(headroom)), as: SIMD2<UInt64>.self)
        raw.storeBytes(of: SIMD2<UInt64>(buffer, sizes), toByteOffset: 16, as: SIMD2<UInt64>.self)
        raw.storeBytes(of: t2, toByteOffset: 32, as: SIMD16<UInt8>.self)
        raw.storeBytes(of: t3, toByteOffset: 48, as: SIMD16<UInt8>.self)
        raw.storeBytes(of: t4, toByteOffset: 64, as: SIMD16<UInt8>.self)
        raw.storeBytes(of: t5, toByteOffset: 80, as: SIMD16<UInt8>.self)
    }
}
