import CDatapath

#if canImport(Glibc)
import Glibc
#endif

/// One AF_PACKET socket with a TPACKET_V3 RX ring and a TX ring in one mapping: one queue of an
/// `AFPacketDevice`, driven by one worker. Receive is zero-copy: each skb points into its ring
/// block, and the block goes back to the kernel when the walker has passed it and every skb in
/// it is freed. Transmit copies once into a TX frame and kicks the kernel once per batch.
///
/// Only `let` stored properties; the walker's cursor lives in raw memory.
final class AFPacketQueue: @unchecked Sendable {
    let ring: CDatapath_ring
    let references: UnsafeMutablePointer<RingBlockReference>
    /// [0] block index, [1] packets left in the block, [2] next packet address, [3] TX frame
    /// index, [4] a TX frame found not taken right after a kick + 1 (0: none), [5] since when (ns).
    let cursor: UnsafeMutablePointer<Int>

    /// How long the kernel may keep refusing one TX frame before it is given up (a driver's
    /// transmit timeout, in spirit): a frame the device drops on every try — larger than the
    /// peer's MTU after an MTU change, for one — must not hold the ring for good.
    static let refusedFrameTimeout = 10_000_000
    let headerBytes: Int
    /// 10 when every frame carries a virtio-net header (PACKET_VNET_HDR), else 0.
    let vnetBytes: Int
    /// A transmit-only socket for frames larger than a TX ring frame (GSO super-frames); -1
    /// without a virtio-net header.
    let jumboFD: Int32
    /// Ordinary frames up to this length are sent copied whole into the kernel's skb rather
    /// than as fragments of the ring's pages (see `AFPacketDevice.linearTransmitLimit`).
    let linearTransmitLimit: Int

    init(config: CDatapath_ring_config, interface: String, linearTransmitLimit: Int) throws(AFPacketError) {
        self.linearTransmitLimit = linearTransmitLimit
        var ring = CDatapath_ring()
        var failedCall: UnsafePointer<CChar>? = nil
        var config = config
        let rc = interface.withCString { name in
            config.ifname = name
            return CDatapath_ring_open(&config, &ring, &failedCall)
        }
        if rc < 0 {
            throw AFPacketError(interface: interface, call: failedCall.map { String(cString: $0) } ?? "open", errno: -rc)
        }
        vnetBytes = config.vnet_hdr != 0 ? VirtioNetHeader.size : 0
        if config.vnet_hdr != 0 && config.tx_frame_size != 0 {
            let fd = CDatapath_jumbo_open(ring.ifindex, 1, config.qdisc_bypass, &failedCall)
            if fd < 0 {
                CDatapath_ring_close(&ring)
                throw AFPacketError(interface: interface, call: failedCall.map { String(cString: $0) } ?? "socket",
                                    errno: -fd)
            }
            jumboFD = fd
        } else {
            jumboFD = -1
        }
        self.ring = ring
        let blocks = Int(ring.rx_block_count)
        references = .allocate(capacity: max(1, blocks))
        for i in 0..<max(1, blocks) {
            references[i] = RingBlockReference()
            references[i].block = blocks > 0 ? UnsafeMutableRawPointer(ring.rx_base + i * Int(ring.rx_block_size)) : nil
        }
        cursor = .allocate(capacity: 6)
        cursor.initialize(repeating: 0, count: 6)
        // The tpacket3_hdr (aligned) and the sockaddr_ll after it; the rest up to tp_mac is headroom.
        headerBytes = 48 + MemoryLayout<sockaddr_ll>.size
    }

    deinit {
        var ring = ring
        CDatapath_ring_close(&ring)
        if jumboFD >= 0 { close(jumboFD) }
        references.deallocate()
        cursor.deallocate()
    }

    var fd: Int32 { ring.fd }

    /// Walks ready blocks, turning up to `max` frames into skbs appended to `batch`.
    /// Returns (received, bytes, truncated).
    @inline(__always)
    func receive(into batch: inout PacketBatch, max: Int, ifindex: Int, worker: Worker) -> (Int, Int) {
        guard ring.rx_block_count > 0 else { return (0, 0) }
        let limit = Swift.min(max, batch.capacity - batch.count)
        var received = 0
        var bytes = 0
        var blockIndex = cursor[0]
        var remaining = cursor[1]
        var packet = UnsafeMutableRawPointer(bitPattern: cursor[2])
        let blockSize = Int(ring.rx_block_size)
        let ifindex16 = UInt16(truncatingIfNeeded: ifindex)
        while received < limit {
            if remaining == 0 {
                // A block whose skbs are still held keeps TP_STATUS_USER from its last lap: it
                // is not new. The kernel stops at it too (the queue freezes and drops) until
                // the last skb is freed and the block handed back.
                guard CDatapath_atomic_load_u32(referenceCounter(blockIndex)) == 0 else { break }
                let block = UnsafeMutableRawPointer(ring.rx_base + blockIndex &* blockSize)
                guard CDatapath_block_status(block) & UInt32(CDatapath_TP_STATUS_USER) != 0 else { break }
                let count = Int(CDatapath_block_packet_count(block))
                if count == 0 {
                    CDatapath_block_release(block)
                    blockIndex = blockIndex &+ 1 == Int(ring.rx_block_count) ? 0 : blockIndex &+ 1
                    continue
                }
                // One reference per packet plus the walker's, dropped when it leaves the block.
                CDatapath_atomic_store_u32(referenceCounter(blockIndex), UInt32(count) &+ 1)
                remaining = count
                packet = block + Int(CDatapath_block_first_offset(block))
            }
            guard let frame = packet, let skb = worker.cache.allocate() else { break }
            let snap = Int(CDatapath_packet_snaplen(frame))
            let mac = Int(CDatapath_packet_mac_offset(frame))
            let next = Int(CDatapath_packet_next_offset(frame))
            let head = skb.head
            head.pointee.bufferStart = frame + headerBytes
            head.pointee.data = frame + mac
            head.pointee.length = UInt32(truncatingIfNeeded: snap)
            let end = next != 0 ? next : mac &+ snap
            head.pointee.bufferSize = UInt32(truncatingIfNeeded: end &- headerBytes)
            let headroom = UInt16(truncatingIfNeeded: mac &- headerBytes)
            head.pointee.macOffset = headroom
            head.pointee.networkOffset = headroom
            head.pointee.transportOffset = headroom
            head.pointee.hash = CDatapath_packet_rxhash(frame)
            head.pointee.inputIfindex = ifindex16
            head.pointee.timestamp = UInt64(CDatapath_packet_sec(frame)) &* 1_000_000_000 &+ UInt64(CDatapath_packet_nsec(frame))
            let status = CDatapath_packet_status(frame)
            if status & UInt32(CDatapath_TP_STATUS_CSUMNOTREADY) != 0 {
                head.pointee.checksumState = .partial
            } else if status & UInt32(CDatapath_TP_STATUS_CSUM_VALID) != 0 {
                head.pointee.checksumState = .unnecessary
            }
            if vnetBytes != 0 { VirtioNetHeader.receive(frame + (mac &- vnetBytes), into: skb, macOffset: Int(headroom)) }
            head.pointee.ringReference = references + blockIndex
            remaining &-= 1
            packet = frame + next
            if remaining == 0 {
                PoolCache.releaseRingReference(references + blockIndex, count: 1)
                blockIndex = blockIndex &+ 1 == Int(ring.rx_block_count) ? 0 : blockIndex &+ 1
                packet = nil
            }
            if snap < Int(CDatapath_packet_wire_length(frame)) {
                worker.drop(skb, .truncatedFrame)
                continue
            }
            batch.slots[batch.count] = skb
            batch.count &+= 1
            received &+= 1
            bytes &+= snap
        }
        cursor[0] = blockIndex
        cursor[1] = remaining
        cursor[2] = Int(bitPattern: packet)
        return (received, bytes)
    }

    @inline(__always)
    func referenceCounter(_ block: Int) -> UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(references + block).assumingMemoryBound(to: UInt32.self)
    }

    /// Copies each skb into a free TX frame, frees it, and kicks the kernel once. With
    /// `keepUnsent`, the first packet without a free frame and all after it stay in `batch`
    /// (in order) instead of being dropped. Returns (sent, bytes, dropped).
    @inline(__always)
    func transmit(_ batch: inout PacketBatch, keepUnsent: Bool, worker: Worker) -> (Int, Int, Int) {
        guard ring.tx_frame_count > 0 else {
            let n = batch.count
            worker.drop(&batch, .deviceDown)
            return (0, 0, n)
        }
        if cursor[4] != 0 { checkRefusedFrame(worker) }
        var index = cursor[3]
        var sent = 0
        var bytes = 0
        var dropped = 0
        let frameSize = Int(ring.tx_frame_size)
        let dataOffset = Int(ring.tx_data_offset)
        let vnetBytes = self.vnetBytes
        let room = frameSize &- dataOffset &- vnetBytes
        let frameCount = Int(ring.tx_frame_count)
        var consumed = batch.count
        var unkicked = 0
        // A frame we submitted that the kernel has not taken: its walk stopped (a send on a
        // down interface fails before it looks at any frame) and only a kick restarts it.
        var stalled = false
        for i in batch.indices {
            let skb = batch[i]
            let length = skb.length
            if length > room {
                // Frames queued in the ring go first, then this one through the jumbo socket.
                if unkicked > 0 { _ = CDatapath_tx_kick(ring.fd); unkicked = 0 }
                if let reason = sendJumbo(skb) {
                    dropped &+= 1
                    worker.drops.count(reason)
                } else {
                    sent &+= 1
                    bytes &+= length
                }
                continue
            }
            let frame = UnsafeMutableRawPointer(ring.tx_base + index &* frameSize)
            let status = CDatapath_tx_frame_status(frame)
            if status != UInt32(CDatapath_TP_STATUS_AVAILABLE) {
                if status & UInt32(CDatapath_TP_STATUS_WRONG_FORMAT) != 0 {
                    worker.drops.count(.transmitWrongFormat)
                } else {
                    if status & UInt32(CDatapath_TP_STATUS_SEND_REQUEST) != 0 { stalled = true }
                    if keepUnsent {
                        consumed = i
                        break
                    }
                    dropped &+= 1
                    worker.drops.count(.transmitRingFull)
                    continue
                }
            }
            if vnetBytes != 0 {
                guard VirtioNetHeader.transmit(skb, header: frame + dataOffset, linearLimit: linearTransmitLimit) else {
                    dropped &+= 1
                    worker.drops.count(.gsoSegmentation)
                    continue
                }
            }
            // Without virtio-net headers nothing can tell the kernel about a checksum the
            // sender left to the device: finish it here (with them, NEEDS_CSUM does).
            if vnetBytes == 0 && skb.head.pointee.checksumState == .partial { _ = skbChecksumHelp(skb) }
            (frame + (dataOffset &+ vnetBytes)).copyMemory(from: skb.data, byteCount: length)
            CDatapath_tx_frame_submit(frame, UInt32(truncatingIfNeeded: length &+ vnetBytes))
            index = index &+ 1 == frameCount ? 0 : index &+ 1
            sent &+= 1
            unkicked &+= 1
            bytes &+= length
        }
        cursor[3] = index
        let unsent = batch.count &- consumed
        batch.count = consumed
        worker.cache.free(&batch)
        // The unsent tail moves to the front (forward copy: the regions never overlap badly).
        for i in 0..<unsent { batch.slots[i] = batch.slots[consumed &+ i] }
        batch.count = unsent
        // Kick also when nothing new went in but the ring is full of frames the kernel never
        // took: after the interface was down every kick had failed, and without one now the
        // ring would stay full for good (frames waiting in the qdisc, never sent).
        if unkicked > 0 || stalled {
            _ = CDatapath_tx_kick(ring.fd)
            // A healthy kernel takes every submitted frame during the kick (SENDING or done).
            // One still waiting means its walk stopped short: note it, and see next time.
            let last = index == 0 ? frameCount &- 1 : index &- 1
            if cursor[4] == 0 && CDatapath_tx_frame_status(UnsafeMutableRawPointer(ring.tx_base + last &* frameSize))
                & UInt32(CDatapath_TP_STATUS_SEND_REQUEST) != 0 {
                cursor[4] = last &+ 1
                cursor[5] = Int(truncatingIfNeeded: worker.clock.now())
            }
        }
        return (sent, bytes, dropped)
    }

    /// Follows up a frame found not taken after a kick: taken since — the kernel moves again;
    /// still waiting after `refusedFrameTimeout` — the kernel keeps refusing the ring's head,
    /// and every pending frame is given up (`discardPendingFrames`). The clock is read only
    /// while such a frame is noted.
    func checkRefusedFrame(_ worker: Worker) {
        let frame = UnsafeMutableRawPointer(ring.tx_base + (cursor[4] &- 1) &* Int(ring.tx_frame_size))
        if CDatapath_tx_frame_status(frame) & UInt32(CDatapath_TP_STATUS_SEND_REQUEST) == 0 {
            cursor[4] = 0
            return
        }
        guard Int(truncatingIfNeeded: worker.clock.now()) &- cursor[5] > AFPacketQueue.refusedFrameTimeout else { return }
        cursor[4] = 0
        discardPendingFrames(worker)
    }

    /// Gives up every frame the kernel has not taken, counted as `.transmitError` (they were
    /// counted as sent when queued). When a device drops a
    /// frame, `tpacket_snd` puts it back to SEND_REQUEST and stops there, so every later kick
    /// tries that frame again — for ever, if the device always refuses it (a frame longer than
    /// the peer's MTU after an MTU change), and everything behind it waits: a wedged ring.
    /// The ring cannot be told to skip a frame, but with PACKET_LOSS the kernel skips a frame it
    /// cannot parse: each pending frame gets a virtio-net header whose `hdr_len` exceeds the
    /// frame, and one kick walks the kernel past them all. Without virtio-net headers there is
    /// no such frame to make, and nothing is given up.
    func discardPendingFrames(_ worker: Worker) {
        guard vnetBytes != 0 else { return }
        let frameSize = Int(ring.tx_frame_size)
        let header = Int(ring.tx_data_offset)
        var discarded = 0
        for k in 0..<Int(ring.tx_frame_count) {
            let frame = UnsafeMutableRawPointer(ring.tx_base + k &* frameSize)
            guard CDatapath_tx_frame_status(frame) & UInt32(CDatapath_TP_STATUS_SEND_REQUEST) != 0 else { continue }
            // virtio_net_hdr: flags 0 (no checksum request), gso_type 0, hdr_len 0xFFFF.
            (frame + header).storeBytes(of: 0, as: UInt16.self)
            (frame + header).storeBytes(of: 0xFFFF, toByteOffset: 2, as: UInt16.self)
            discarded &+= 1
        }
        _ = CDatapath_tx_kick(ring.fd)
        worker.drops.count(.transmitError, UInt64(discarded))
    }

    /// Sends one frame too large for a TX ring frame — a GSO super-frame the kernel segments —
    /// with its virtio-net header through the jumbo socket. Nil when sent, else why it was not
    /// (the skb stays with the caller, which frees it).
    func sendJumbo(_ skb: SKB) -> DropReason? {
        guard jumboFD >= 0 else { return .packetTooBig }
        var header = (UInt64(0), UInt16(0))
        return withUnsafeMutableBytes(of: &header) { raw -> DropReason? in
            guard VirtioNetHeader.transmit(skb, header: raw.baseAddress!, linearLimit: 0) else { return .gsoSegmentation }
            let rc = CDatapath_send_with_header(jumboFD, raw.baseAddress!, UInt32(vnetBytes), skb.data,
                                                UInt32(truncatingIfNeeded: skb.length))
            switch -rc {
            case 0: return nil
            case EMSGSIZE: return .packetTooBig
            case EAGAIN, ENOBUFS: return .transmitRingFull
            default: return .transmitError
            }
        }
    }

    /// Consecutive free TX frames from the next one to fill, counting up to `limit`.
    func freeTransmitFrames(limit: Int) -> Int {
        guard ring.tx_frame_count > 0 else { return 0 }
        let frameCount = Int(ring.tx_frame_count)
        var index = cursor[3]
        var free = 0
        while free < min(limit, frameCount) {
            let frame = UnsafeMutableRawPointer(ring.tx_base + index * Int(ring.tx_frame_size))
            guard CDatapath_tx_frame_status(frame) == UInt32(CDatapath_TP_STATUS_AVAILABLE) else { break }
            free += 1
            index = index + 1 == frameCount ? 0 : index + 1
        }
        return free
    }

    /// Frames still waiting for the kernel (status not back to available).
    func pendingTransmitFrames() -> Int {
        guard ring.tx_frame_count > 0 else { return 0 }
        var pending = 0
        for i in 0..<Int(ring.tx_frame_count) {
            let frame = UnsafeMutableRawPointer(ring.tx_base + i * Int(ring.tx_frame_size))
            let status = CDatapath_tx_frame_status(frame)
            if status & UInt32(CDatapath_TP_STATUS_SEND_REQUEST | CDatapath_TP_STATUS_SENDING) != 0 {
                pending += 1
            }
        }
        return pending
    }

    func kick() { _ = CDatapath_tx_kick(ring.fd) }

    /// Kernel-side counters since the last call (PACKET_STATISTICS resets on read).
    func kernelStatistics() -> (packets: UInt32, drops: UInt32, freezes: UInt32) {
        var packets: UInt32 = 0, drops: UInt32 = 0, freezes: UInt32 = 0
        _ = CDatapath_ring_stats(ring.fd, &packets, &drops, &freezes)
        return (packets, drops, freezes)
    }
}
