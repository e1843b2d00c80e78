import DatapathCore
import DatapathWire

/// Reassembly limits (Linux sysctls `ipfrag_high_thresh`, `ipfrag_time`), per worker here.
public struct ReassemblyParameters: Sendable {
    /// Bytes of fragments held at most (buffer sizes, as Linux counts truesize): a fragment
    /// that would take them above it — one that starts a datagram or one of a datagram
    /// already started — is dropped.
    public var highThreshold = 4 << 20
    /// Nanoseconds a datagram may take to complete (Linux: 30 s).
    public var timeout: Duration = .seconds(30)
    /// Datagrams in reassembly at once.
    public var maximumQueues = 1024

    public init() {}

    public static let linuxDefaults = ReassemblyParameters()
}

/// One worker's datagrams in reassembly (Linux: the `ipq` queues of `ip_fragment.c` under
/// `inet_frag`): a fixed, open-addressed table keyed on (source, destination, identification,
/// protocol), each queue an `SKBQueue` of fragments sorted by offset.
/// Fragments of one datagram reach one worker (AF_PACKET fanout and RPS hash fragments on
/// their addresses only), so the table is the worker's alone and takes no lock.
@safe final class FragmentQueues: @unchecked Sendable {
    struct Queue {
        var source: UInt32 = 0
        var destination: UInt32 = 0
        var identification: UInt16 = 0
        var protocolNumber: UInt8 = 0
        var inUse = false
        var hasFirst = false
        var hasLast = false
        /// Payload bytes of the whole datagram, known once the last fragment is in.
        var totalLength = 0
        var received = 0
        var highestEnd = 0
        var memory = 0
        var deadline: UInt64 = 0
        var fragments = SKBQueue()
    }

    let parameters: ReassemblyParameters
    let queues: UnsafeMutablePointer<Queue>
    let mask: Int
    var memory = 0
    var live = 0
    static let probes = 8

    init(parameters: ReassemblyParameters) {
        self.parameters = parameters
        var slots = 8
        while slots < parameters.maximumQueues { slots <<= 1 }
        mask = slots - 1
        unsafe queues = .allocate(capacity: slots)
        unsafe queues.initialize(repeating: Queue(), count: slots)
    }

    deinit {
        unsafe queues.deinitialize(count: mask + 1)
        unsafe queues.deallocate()
    }

    func slot(source: UInt32, destination: UInt32, identification: UInt16, protocolNumber: UInt8) -> Int {
        var h = (UInt64(source) << 32 | UInt64(destination)) &* 0x9E37_79B9_7F4A_7C15
        h ^= UInt64(identification) << 8 | UInt64(protocolNumber)
        h = (h ^ (h >> 31)) &* 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: h >> 40) & mask
    }

    /// The queue for a key, or nil.
    func find(source: UInt32, destination: UInt32, identification: UInt16, protocolNumber: UInt8) -> Int? {
        let start = slot(source: source, destination: destination, identification: identification,
                         protocolNumber: protocolNumber)
        for probe in 0..<FragmentQueues.probes {
            let index = (start + probe) & mask
            let q = unsafe queues[index]
            if q.inUse && q.source == source && q.destination == destination && q.identification == identification
                && q.protocolNumber == protocolNumber { return index }
        }
        return nil
    }

    /// A free slot for a key, or nil when its probe window is full.
    func freeSlot(source: UInt32, destination: UInt32, identification: UInt16, protocolNumber: UInt8) -> Int? {
        let start = slot(source: source, destination: destination, identification: identification,
                         protocolNumber: protocolNumber)
        for probe in 0..<FragmentQueues.probes where unsafe !queues[(start + probe) & mask].inUse {
            return (start + probe) & mask
        }
        return nil
    }
}

extension IPv4 {
    /// Takes the fragments out of a batch for local delivery and puts back each datagram they
    /// complete (Linux: `ip_local_deliver` → `ip_defrag` → `ip_frag_queue` / `ip_frag_reasm`).
    /// RFC 791 reassembly with Linux's rules: a fragment past 65535 bytes, a last fragment that
    /// contradicts what is known, or any partial overlap (RFC 5722's rule, which Linux applies
    /// to IPv4 too) discards the whole datagram; an exact duplicate is dropped alone; a
    /// non-last fragment whose length is not a multiple of 8 is trimmed to one.
    /// Counts ReasmReqds per fragment, ReasmOKs per datagram, ReasmFails per datagram given up.
    /// Drops: `.fragOverlap`, `.fragDuplicate`, `.fragTooBig`, `.fragInvalid`, `.fragMemoryLimit`,
    /// `.noMemory`. Fragments waiting are moved out of their ring into pool memory.
    func ipDefragment(_ batch: inout PacketBatch, worker: Worker) {
        var kept = 0
        for i in batch.indices {
            let skb = batch[i]
            if unsafe !IPv4Header(unchecked: skb.data).isFragment {
                batch[kept] = skb
                kept &+= 1
                continue
            }
            if let whole = queueFragment(skb, worker: worker) {
                batch[kept] = whole
                kept &+= 1
            }
        }
        batch.count = kept
    }

    /// Linux: `ip_frag_queue`; returns the reassembled datagram when this fragment completes it.
    func queueFragment(_ incoming: SKB, worker: Worker) -> SKB? {
        let counters = statistics.block(worker)
        counters.add(IPStatistics.Counter.reasmReqds.rawValue)
        let table = state(worker).fragmentQueues
        let ip = unsafe incoming.data
        let header = unsafe IPv4Header(unchecked: ip)
        let headerLength = header.headerLength
        let flags = header.flagsAndFragmentOffset
        let offset = Int(flags & 0x1FFF) &* 8
        let more = flags & 0x2000 != 0
        var end = offset + incoming.length - headerLength
        let source = header.source.hostOrder
        let destination = header.destination.hostOrder
        let identification = header.identification
        let protocolNumber = header.protocol.rawValue
        var index = table.find(source: source, destination: destination, identification: identification,
                               protocolNumber: protocolNumber)
        if more { end &= ~7 }
        guard headerLength + end <= 65535 else {
            if let index { discard(index, table, worker: worker) }
            worker.drop(incoming, .fragTooBig)
            return nil
        }
        guard end > offset else {
            worker.drop(incoming, .fragInvalid)
            return nil
        }
        if index == nil {
            guard unsafe table.memory + Int(incoming.head.pointee.bufferSize) <= table.parameters.highThreshold,
                  let free = table.freeSlot(source: source, destination: destination, identification: identification,
                                            protocolNumber: protocolNumber) else {
                counters.add(IPStatistics.Counter.reasmFails.rawValue)
                worker.drop(incoming, .fragMemoryLimit)
                return nil
            }
            unsafe table.queues[free] = FragmentQueues.Queue(
                source: source, destination: destination, identification: identification,
                protocolNumber: protocolNumber, inUse: true, deadline: worker.clock.now() &+ table.parameters.timeout.nanoseconds)
            table.live &+= 1
            index = free
        }
        let q = unsafe table.queues + index!
        if !more {
            if unsafe end < q.pointee.highestEnd || (q.pointee.hasLast && end != q.pointee.totalLength) {
                discard(index!, table, worker: worker)
                worker.drop(incoming, .fragInvalid)
                return nil
            }
            unsafe q.pointee.hasLast = true
            unsafe q.pointee.totalLength = end
        } else if unsafe q.pointee.hasLast && end > q.pointee.totalLength {
            discard(index!, table, worker: worker)
            worker.drop(incoming, .fragInvalid)
            return nil
        }
        // Where it goes in the offset-sorted list; an overlap kills the datagram.
        var previous: SKB?
        for fragment in unsafe q.pointee.fragments {
            let (start, stop) = IPv4.fragmentSpan(fragment)
            if start == offset && stop == end {
                worker.drop(incoming, .fragDuplicate)
                return nil
            }
            if offset < stop && end > start {
                discard(index!, table, worker: worker)
                worker.drop(incoming, .fragOverlap)
                return nil
            }
            if start >= end { break }
            previous = fragment
        }
        // Every fragment counts against the bound, not only a datagram's first: tiny
        // fragments of datagrams already started would otherwise hold any number of the
        // pool's buffers (8 191 per datagram) until they time out, starving all traffic.
        guard unsafe table.memory + Int(incoming.head.pointee.bufferSize) <= table.parameters.highThreshold else {
            counters.add(IPStatistics.Counter.reasmFails.rawValue)
            worker.drop(incoming, .fragMemoryLimit)
            return nil
        }
        guard let skb = worker.cache.detachFromRing(incoming) else {
            worker.drops.count(.noMemory)
            return nil
        }
        skb.trim(to: headerLength + end - offset)
        skb.control1 = UInt64(offset) << 32 | UInt64(end)
        unsafe q.pointee.fragments.insert(skb, after: previous)
        let size = unsafe Int(skb.head.pointee.bufferSize)
        unsafe q.pointee.memory &+= size
        table.memory &+= size
        unsafe q.pointee.received &+= end - offset
        unsafe q.pointee.highestEnd = unsafe max(q.pointee.highestEnd, end)
        if offset == 0 { unsafe q.pointee.hasFirst = true }
        guard unsafe q.pointee.hasFirst && q.pointee.hasLast && q.pointee.received == q.pointee.totalLength else { return nil }
        return reassemble(index!, table, worker: worker)
    }

    /// The payload span [offset, end) a queued fragment covers (kept in its control word 1).
    static func fragmentSpan(_ skb: SKB) -> (Int, Int) {
        (Int(skb.control1 >> 32), Int(skb.control1 & 0xFFFF_FFFF))
    }

    /// Linux: `ip_frag_reasm` — one skb with the first fragment's header (options included), the
    /// payloads in order, total length set, MF and offset cleared, the checksum redone.
    func reassemble(_ index: Int, _ table: FragmentQueues, worker: Worker) -> SKB? {
        let q = unsafe table.queues[index]
        let counters = statistics.block(worker)
        let first = q.fragments.head!
        let headerLength = unsafe IPv4Header(unchecked: first.data).headerLength
        let total = headerLength + q.totalLength
        guard let whole = allocateLarge(bytes: total, worker: worker), let out = unsafe whole.put(total) else {
            discard(index, table, worker: worker)
            return nil
        }
        unsafe out.copyMemory(from: first.data, byteCount: headerLength)
        for skb in q.fragments {
            let (start, stop) = IPv4.fragmentSpan(skb)
            // Later fragments may carry fewer options than the first (RFC 791).
            let ownHeader = unsafe IPv4Header(unchecked: skb.data).headerLength
            unsafe (out + headerLength + start).copyMemory(from: skb.data + ownHeader, byteCount: stop - start)
        }
        let header = unsafe IPv4Header(unchecked: out)
        header.totalLength = UInt16(total)
        header.flagsAndFragmentOffset = 0
        header.fillChecksum()
        IPv4.copyRouting(from: first, to: whole)
        whole.checksumState = first.checksumState == .unnecessary ? .unnecessary : .none
        release(index, table, worker: worker)
        counters.add(IPStatistics.Counter.reasmOKs.rawValue)
        return whole
    }


    /// Gives the datagram up (ReasmFails) and frees its fragments.
    func discard(_ index: Int, _ table: FragmentQueues, worker: Worker) {
        statistics.block(worker).add(IPStatistics.Counter.reasmFails.rawValue)
        release(index, table, worker: worker)
    }

    /// Frees a queue's fragments and its slot.
    func release(_ index: Int, _ table: FragmentQueues, worker: Worker) {
        unsafe table.queues[index].fragments.free(worker: worker)
        unsafe table.memory &-= table.queues[index].memory
        unsafe table.queues[index] = FragmentQueues.Queue()
        table.live &-= 1
    }

    /// Gives up every datagram past its deadline (Linux: `ip_expire`): ReasmTimeout and
    /// ReasmFails, and ICMP time exceeded (fragment reassembly) about the first fragment when it
    /// came. Runs on each worker's timers once a second.
    public func expireFragments(worker: Worker) {
        let state = self.state(worker)
        let table = state.fragmentQueues
        guard table.live > 0 else { return }
        let now = worker.clock.now()
        let counters = statistics.block(worker)
        for index in 0...table.mask where unsafe table.queues[index].inUse && table.queues[index].deadline <= now {
            counters.add(IPStatistics.Counter.reasmTimeout.rawValue)
            if unsafe table.queues[index].hasFirst, let first = unsafe table.queues[index].fragments.head {
                icmp.sendError(for: first, type: .timeExceeded, code: ICMPCode.TimeExceeded.reassembly,
                               worker: worker)
            }
            worker.drops.count(.fragReassemblyTimeout, 1)
            discard(index, table, worker: worker)
        }
        finishBatch(state, worker: worker)
    }

    /// Datagrams in reassembly on worker `index` and the bytes they hold (tests, statistics).
    public func reassemblyQueues(worker index: Int) -> (datagrams: Int, bytes: Int) {
        let table = perWorker[index].fragmentQueues
        return (table.live, table.memory)
    }
}
