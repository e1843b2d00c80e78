import DatapathWire

/// The virtio-net header an AF_PACKET socket with PACKET_VNET_HDR puts before every frame it
/// receives and expects before every frame it sends (`struct virtio_net_hdr`, 10 bytes,
/// little-endian; packet(7), include/uapi/linux/virtio_net.h): the checksum and GSO metadata
/// of the kernel's skb. With it, a TSO or GRO super-frame arrives whole, as one GSO skb, and
/// leaves whole for the kernel to segment.
enum VirtioNetHeader {
    static var size: Int { 10 }
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: checksum from `csum_start`, stored at `csum_offset`.
    static var needsChecksum: UInt8 { 1 }
    /// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
    static var dataValid: UInt8 { 2 }

    /// Copies a received header's metadata into a fresh skb whose MAC header is `macOffset` bytes
    /// after `bufferStart` (Linux: `virtio_net_hdr_to_skb`).
    @inline(__always)
    static func receive(_ header: UnsafeRawPointer, into skb: SKB, macOffset: Int) {
        let flags = header.load(as: UInt8.self)
        if flags & needsChecksum != 0 {
            skb.checksumState = .partial
            skb.checksumStart = macOffset &+ Int(UInt16(littleEndian: header.loadUnaligned(fromByteOffset: 6, as: UInt16.self)))
            skb.checksumOffset = Int(UInt16(littleEndian: header.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
        } else if flags & dataValid != 0 {
            skb.checksumState = .unnecessary
        }
        let type = header.load(fromByteOffset: 1, as: UInt8.self)
        if type != GSOType.none.rawValue {
            skb.gsoType = GSOType(rawValue: type)
            skb.gsoSize = Int(UInt16(littleEndian: header.loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
        }
    }

    /// Writes the header for `skb`, whose data starts at its MAC header, at `header` (Linux:
    /// `virtio_net_hdr_from_skb`). An ordinary packet gets an all-zero header when its checksum
    /// is complete, NEEDS_CSUM with the checksum's place when it was left partial. A GSO packet gets its type and size and NEEDS_CSUM over its transport header;
    /// one whose checksum was verified rather than left partial (GRO) first gets the
    /// pseudo-header sum in its checksum field, as Linux's `tcp4_gso_segment` prepares it.
    /// An ordinary packet of at most `linearLimit` bytes gets its own length as `hdr_len`, so
    /// the kernel copies it whole into the skb instead of attaching the ring frame's page.
    /// Returns false, for the caller to drop, for a GSO packet it cannot describe (not IPv4
    /// TCP or UDP).
    static func transmit(_ skb: SKB, header: UnsafeMutableRawPointer, linearLimit: Int) -> Bool {
        header.storeBytes(of: 0, as: UInt64.self)
        header.storeBytes(of: 0, toByteOffset: 8, as: UInt16.self)
        guard skb.isGSO else {
            // hdr_len is how much of the frame the kernel copies into the skb's linear part
            // (tpacket_snd); the rest it attaches as fragments of the ring's pages.
            let length = skb.length
            var linear = length <= linearLimit ? length : 0
            if skb.checksumState == .partial {
                // Left for the device: NEEDS_CSUM, with the checksum's place inside what the
                // kernel copies (virtio_net_hdr_to_skb requires it in the linear part). A
                // place outside the frame is completed here instead, when it can be.
                let start = skb.checksumStartFromData
                let end = start &+ skb.checksumOffset &+ 2
                if start > 0 && end <= length {
                    header.storeBytes(of: needsChecksum, as: UInt8.self)
                    header.storeBytes(of: UInt16(truncatingIfNeeded: start).littleEndian, toByteOffset: 6, as: UInt16.self)
                    header.storeBytes(of: UInt16(truncatingIfNeeded: skb.checksumOffset).littleEndian,
                                      toByteOffset: 8, as: UInt16.self)
                    linear = max(linear, end)
                } else {
                    _ = skbChecksumHelp(skb)
                }
            }
            if linear > 0 {
                header.storeBytes(of: UInt16(truncatingIfNeeded: linear).littleEndian, toByteOffset: 2, as: UInt16.self)
            }
            return true
        }
        let frame = skb.data
        let length = skb.length
        let start: Int
        let fieldOffset: Int
        if skb.checksumState == .partial {
            start = skb.checksumStartFromData
            fieldOffset = skb.checksumOffset
        } else {
            guard let parsed = EthernetFrame.parse(frame, length: length), parsed.etherType == .ipv4,
                  let place = TransportChecksum(frame, length: length, ipOffset: parsed.payloadOffset)
            else { return false }
            start = place.start
            fieldOffset = place.fieldOffset
            let pseudo = InternetChecksum.pseudoHeaderSum(source: place.ip.source, destination: place.ip.destination,
                                                          protocol: place.ip.protocol, length: place.length)
            (frame + (start &+ fieldOffset)).storeBytes(of: InternetChecksum.fold(pseudo).bigEndian, as: UInt16.self)
            skb.setPartialChecksum(header: frame + start, offset: fieldOffset)
        }
        guard start > 0, start &+ fieldOffset &+ 2 <= length else { return false }
        // The headers to copy into every segment: up to the end of the TCP header (or the
        // 8-byte UDP header); the kernel only needs the checksum field inside it.
        var headerLength = start &+ fieldOffset &+ 2
        if skb.gsoType.base == .tcpv4, start &+ 13 <= length {
            headerLength = max(headerLength, start &+ Int(frame.load(fromByteOffset: start &+ 12, as: UInt8.self) >> 4) &* 4)
        }
        header.storeBytes(of: needsChecksum, as: UInt8.self)
        header.storeBytes(of: skb.gsoType.rawValue, toByteOffset: 1, as: UInt8.self)
        header.storeBytes(of: UInt16(truncatingIfNeeded: min(headerLength, length)).littleEndian, toByteOffset: 2, as: UInt16.self)
        header.storeBytes(of: UInt16(truncatingIfNeeded: skb.gsoSize).littleEndian, toByteOffset: 4, as: UInt16.self)
        header.storeBytes(of: UInt16(truncatingIfNeeded: start).littleEndian, toByteOffset: 6, as: UInt16.self)
        header.storeBytes(of: UInt16(truncatingIfNeeded: fieldOffset).littleEndian, toByteOffset: 8, as: UInt16.self)
        return true
    }
}
