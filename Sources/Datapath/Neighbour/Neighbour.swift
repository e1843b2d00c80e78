import DatapathCore
import DatapathWire

/// One neighbour: an IPv4 address on a device and what is known of its link-layer address
/// (Linux: `struct neighbour` in `arp_tbl`).
///
/// Two halves. Workers read the *shared* half on output without a lock: the state word and the
/// cached Ethernet header behind a sequence lock (Linux: `nud_state` and `struct hh_cache`
/// with its `hh_lock` seqlock), one cache line. Everything else — timers, probes, the pending
/// queue — is changed only under the table's lock, by `NeighbourTable`.
@safe public final class Neighbour: @unchecked Sendable, CustomStringConvertible {
    public let address: IPv4Address
    public let device: any NetDevice
    public let ifindex: Int
    /// How holders refer to this entry (`NeighbourTable.entry(_:)` finds it while it is in the
    /// table).
    package let handle: NeighbourHandle

    /// seq: UInt32 @0, state: UInt32 @4, header bytes 0..<8 @8, header bytes 6..<14 @16.
    @usableFromInline let shared: UnsafeMutableRawPointer

    // Guarded by the table's lock.
    var state: NeighbourState = .none
    var linkAddress: MACAddress?
    var confirmed: UInt64 = 0
    var updated: UInt64 = 0
    var used: UInt64 = 0
    var deadline: UInt64?
    var probes = 0
    /// Packets waiting for resolution (Linux: `arp_queue`), in pool memory.
    var pending = SKBQueue()
    /// Removed from the table: holders may still output through it, which re-resolves nothing.
    var isDead = false

    init(address: IPv4Address, device: any NetDevice, handle: NeighbourHandle) {
        self.handle = handle
        self.address = address
        self.device = device
        self.ifindex = device.ifindex
        unsafe shared = .allocate(byteCount: 64, alignment: 64)
        unsafe shared.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
    }

    deinit { unsafe shared.deallocate() }

    @usableFromInline var sequenceWord: UnsafeMutablePointer<UInt32> { unsafe shared.assumingMemoryBound(to: UInt32.self) }
    @usableFromInline var stateWord: UnsafeMutablePointer<UInt32> { unsafe (shared + 4).assumingMemoryBound(to: UInt32.self) }
    @usableFromInline var headerLow: UnsafeMutablePointer<UInt64> { unsafe (shared + 8).assumingMemoryBound(to: UInt64.self) }
    @usableFromInline var headerHigh: UnsafeMutablePointer<UInt64> { unsafe (shared + 16).assumingMemoryBound(to: UInt64.self) }

    /// The state as workers see it now.
    @inlinable public var currentState: NeighbourState {
        unsafe NeighbourState(rawValue: UInt8(truncatingIfNeeded: SharedWord.load(stateWord)))
    }

    /// Publishes `state` to workers (under the table lock).
    func publish(_ newState: NeighbourState) {
        state = newState
        unsafe SharedWord.store(stateWord, UInt32(newState.rawValue))
    }

    /// Rebuilds the cached header for `destination` (Linux: `neigh_update_hhs` →
    /// `eth_header_cache_update`), as a seqlock writer: readers retry if they overlap it.
    func publishHeader(destination: MACAddress) {
        var header = (UInt64(0), UInt64(0), UInt64(0))
        unsafe withUnsafeMutableBytes(of: &header) { bytes in
            let base = bytes.baseAddress!
            unsafe destination.store(to: base)
            unsafe device.macAddress.store(to: base + 6)
            unsafe base.storeBytes(of: EtherType.ipv4.rawValue.bigEndian, toByteOffset: 12, as: UInt16.self)
        }
        let low = header.0
        let high = unsafe withUnsafeBytes(of: &header) { unsafe $0.loadUnaligned(fromByteOffset: 6, as: UInt64.self) }
        let sequence = unsafe SharedWord.load(sequenceWord)
        unsafe SharedWord.store(sequenceWord, sequence &+ 1)
        SharedWord.releaseFence()
        unsafe SharedWord.storeRelaxed(headerLow, low)
        unsafe SharedWord.storeRelaxed(headerHigh, high)
        unsafe SharedWord.store(sequenceWord, sequence &+ 2)
    }

    /// The cached header as two overlapping words (bytes 0..<8 and 6..<14), read consistently
    /// (Linux: the `read_seqbegin` / `read_seqretry` loop of `neigh_hh_output`).
    @inlinable @inline(__always)
    func cachedHeader() -> (low: UInt64, high: UInt64) {
        while true {
            let before = unsafe SharedWord.load(sequenceWord)
            let low = unsafe SharedWord.loadRelaxed(headerLow)
            let high = unsafe SharedWord.loadRelaxed(headerHigh)
            SharedWord.acquireFence()
            if unsafe before & 1 == 0 && SharedWord.load(sequenceWord) == before { return (low, high) }
        }
    }

    /// Prepends the cached Ethernet header to every skb of `batch` (Linux: `neigh_hh_output`):
    /// one consistent read of the header per batch, two 8-byte stores per packet. An skb without
    /// 14 bytes of headroom is dropped as `.noMemory` (Linux: a failed `skb_cow_head`).
    @inlinable
    public func writeCachedHeaders(_ batch: inout PacketBatch, worker: Worker) {
        let (low, high) = cachedHeader()
        var kept = 0
        let slots = unsafe batch.slots
        for i in 0..<batch.count {
            let skb = unsafe slots[i]
            guard let frame = unsafe skb.push(EthernetHeader.length) else {
                worker.drop(skb, .noMemory)
                continue
            }
            unsafe frame.storeBytes(of: low, as: UInt64.self)
            unsafe frame.storeBytes(of: high, toByteOffset: 6, as: UInt64.self)
            unsafe slots[kept] = skb
            kept &+= 1
        }
        batch.count = kept
    }

    /// `198.18.0.2 dev eth0`.
    public var description: String { "\(address) dev \(device.name)" }
}
