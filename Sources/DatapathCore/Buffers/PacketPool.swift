import CNUMA
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A fixed pool of packet buffers in one NUMA node's memory (Linux's role: the skb slab caches
/// plus page-frag allocators). Each element is an `SKBHead` (128 bytes) followed by its data
/// buffer. Workers allocate through a `PoolCache`, which refills from and drains to the pool's
/// shared free stack in batches; the shared stack takes a lock once per batch, never per packet.
public final class PacketPool: @unchecked Sendable {
    /// Registry for freeing an skb into the pool it came from: index = `SKBHead.poolID`.
    /// Unretained: a pool leaves it in `deinit` (its skbs must all be freed by then).
    @usableFromInline nonisolated(unsafe) static let registry: UnsafeMutablePointer<Unmanaged<PacketPool>?> = {
        let table = UnsafeMutablePointer<Unmanaged<PacketPool>?>.allocate(capacity: 256)
        table.initialize(repeating: nil, count: 256)
        return table
    }()
    /// Which registry slots are taken (reserved in `init` before the pool can register itself).
    static let registryLock = Lock<[Bool]>(Array(repeating: false, count: 256))

    public let id: UInt16
    public let node: Int
    public let capacity: Int
    /// Data bytes per element, headroom included.
    public let bufferSize: Int
    /// Headroom reserved on allocation: room to push L2, tunnel and ESP headers in place.
    public let headroom: Int
    @usableFromInline let memory: UnsafeMutableRawPointer
    @usableFromInline let memorySize: Int
    @usableFromInline let stride: Int
    let usesNUMA: Bool
    let shared: Lock<Int>
    let sharedSlots: UnsafeMutablePointer<UnsafeMutablePointer<SKBHead>>
    let caches: Lock<[PoolCache]>

    @inlinable public static var headSize: Int { 128 }
    /// The header bytes reset on allocation: everything before `ownBuffer`.
    @inlinable public static var templateBytes: Int { 96 }
    /// A fresh skb's header bytes for this pool, `data` and `bufferStart` aside.
    let template: UnsafeMutableRawPointer
    @inlinable public static var defaultBufferSize: Int { 2176 }
    @inlinable public static var defaultHeadroom: Int { 128 }

    /// Creates `capacity` elements on `node` (libnuma), or in ordinary memory when libnuma
    /// reports no NUMA support.
    public init(capacity: Int, bufferSize: Int = PacketPool.defaultBufferSize,
                headroom: Int = PacketPool.defaultHeadroom, node: Int = 0) throws(PoolError) {
        precondition(MemoryLayout<SKBHead>.size <= PacketPool.headSize)
        precondition(MemoryLayout<SKBHead>.offset(of: \SKBHead.ownBuffer) == PacketPool.templateBytes)
        // PoolCache.isPrivate reads these as three words; HeaderTemplate.stamp builds the
        // first 32 bytes as next, data, bufferStart, then length and bufferSize.
        precondition(MemoryLayout<SKBHead>.offset(of: \SKBHead.data) == 0x08
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.bufferStart) == 0x10
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.length) == 0x18
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.bufferSize) == 0x1C)
        // SKB.pullEthernetHeader (eth_type_trans) stores the three header offsets and the protocol as one word.
        precondition(MemoryLayout<SKBHead>.offset(of: \SKBHead.macOffset) == 0x20
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.networkOffset) == 0x22
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.transportOffset) == 0x24
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.protocolType) == 0x26)
        // SKB.hasOffloadWork reads GSO size, GSO type and checksum state as one word.
        precondition(MemoryLayout<SKBHead>.offset(of: \SKBHead.gsoSize) == 0x38
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.gsoType) == 0x3A
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.checksumState) == 0x3B)
        precondition(MemoryLayout<SKBHead>.offset(of: \SKBHead.dataRefs) == 0x40
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.poolID) == 0x46
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.dataOwner) == 0x48
            && MemoryLayout<SKBHead>.offset(of: \SKBHead.ringReference) == 0x50)
        guard capacity > 0, bufferSize > headroom, headroom >= 0 else {
            throw .invalidSize(capacity: capacity, bufferSize: bufferSize)
        }
        self.capacity = capacity
        self.bufferSize = bufferSize
        self.headroom = headroom
        self.stride = (PacketPool.headSize + bufferSize + 63) & ~63
        self.memorySize = stride * capacity
        var numa = numa_available() >= 0 && node <= numa_max_node()
        var base: UnsafeMutableRawPointer? = nil
        if numa { base = numa_alloc_onnode(memorySize, Int32(node)) }
        if base == nil {
            numa = false
            var p: UnsafeMutableRawPointer? = nil
            if posix_memalign(&p, 4096, memorySize) == 0 { base = p }
        }
        guard let base else { throw .outOfMemory(bytes: memorySize) }
        self.memory = base
        self.usesNUMA = numa
        self.node = numa ? node : 0

        var assigned: UInt16? = nil
        PacketPool.registryLock.withLock { taken in
            for i in 1..<256 where !taken[i] {
                taken[i] = true
                assigned = UInt16(i)
                break
            }
        }
        guard let assigned else {
            if numa { numa_free(base, memorySize) } else { free(base) }
            throw .tooManyPools
        }
        self.id = assigned

        template = .allocate(byteCount: PacketPool.headSize, alignment: 64)
        var fresh = SKBHead.free(buffer: template, size: UInt32(bufferSize), poolID: assigned)
        let offset = UInt16(headroom)
        fresh.macOffset = offset
        fresh.networkOffset = offset
        fresh.transportOffset = offset
        fresh.dataRefs = 1
        fresh.owner = .allocated
        template.bindMemory(to: SKBHead.self, capacity: 1).initialize(to: fresh)
        sharedSlots = .allocate(capacity: capacity)
        for i in 0..<capacity {
            let element = base + i * stride
            let head = element.bindMemory(to: SKBHead.self, capacity: 1)
            let buffer = element + PacketPool.headSize
            head.initialize(to: SKBHead.free(buffer: buffer, size: UInt32(bufferSize), poolID: assigned))
            sharedSlots[capacity - 1 - i] = head
        }
        shared = Lock(capacity)
        caches = Lock([])
        PacketPool.registryLock.withLock { _ in PacketPool.registry[Int(assigned)] = Unmanaged.passUnretained(self) }
    }

    deinit {
        PacketPool.registryLock.withLock { taken in
            PacketPool.registry[Int(id)] = nil
            taken[Int(id)] = false
        }
        sharedSlots.deallocate()
        template.deallocate()
        if usesNUMA { numa_free(memory, memorySize) } else { free(memory) }
    }

    /// One pool per NUMA node (one pool when libnuma reports no NUMA support), each of
    /// `capacity` elements in that node's memory.
    public static func perNode(capacity: Int, bufferSize: Int = PacketPool.defaultBufferSize,
                               headroom: Int = PacketPool.defaultHeadroom) throws(PoolError) -> [PacketPool] {
        let nodes = numa_available() >= 0 ? Int(numa_max_node()) + 1 : 1
        var pools: [PacketPool] = []
        for node in 0..<nodes {
            pools.append(try PacketPool(capacity: capacity, bufferSize: bufferSize, headroom: headroom, node: node))
        }
        return pools
    }

    /// The NUMA node a CPU belongs to (0 without NUMA support).
    public static func node(ofCPU cpu: Int) -> Int {
        guard numa_available() >= 0 else { return 0 }
        return max(0, Int(numa_node_of_cpu(Int32(cpu))))
    }

    /// A per-worker cache of this pool's free elements (Linux: the per-CPU slab caches).
    package func makeCache(capacity: Int = 512, batch: Int = 64) -> PoolCache {
        let cache = PoolCache(pool: self, capacity: capacity, batch: min(batch, capacity))
        caches.withLock { $0.append(cache) }
        return cache
    }

    /// Elements in no free list: allocated skbs (and clones). Exact when workers are idle.
    public var inUseCount: Int { capacity - freeCount }

    /// Elements free in the shared stack and every cache.
    public var freeCount: Int {
        let cached = caches.withLock { $0.reduce(0) { $0 + $1.count } }
        return shared.withLock { $0 } + cached
    }

    /// Moves up to `max` free elements to `destination`; returns how many.
    func takeShared(_ destination: UnsafeMutablePointer<UnsafeMutablePointer<SKBHead>>, max: Int) -> Int {
        shared.withLock { count in
            let n = Swift.min(max, count)
            count -= n
            destination.update(from: sharedSlots + count, count: n)
            return n
        }
    }

    /// Returns `count` free elements to the shared stack.
    func giveShared(_ source: UnsafePointer<UnsafeMutablePointer<SKBHead>>, count: Int) {
        shared.withLock { total in
            precondition(total + count <= capacity, "PacketPool \(id): more frees than elements")
            (sharedSlots + total).update(from: source, count: count)
            total += count
        }
    }

    /// The pool an skb belongs to.
    @usableFromInline static func owning(_ head: UnsafeMutablePointer<SKBHead>) -> PacketPool {
        registry[Int(head.pointee.poolID)]!.takeUnretainedValue()
    }
}

/// Why a pool could not be made.
public enum PoolError: Error, CustomStringConvertible, Equatable {
    case invalidSize(capacity: Int, bufferSize: Int)
    case outOfMemory(bytes: Int)
    case tooManyPools

    public var description: String {
        switch self {
        case let .invalidSize(capacity, size):
            "invalid pool size: \(capacity) elements of \(size) bytes (both must be positive, buffer larger than headroom)"
        case let .outOfMemory(bytes): "cannot allocate \(bytes) bytes of packet memory"
        case .tooManyPools: "too many packet pools (255 at most at once)"
        }
    }
}
