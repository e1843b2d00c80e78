import DatapathCore
import DatapathWire

extension IPv4 {
    /// Linux: `ip_append_data` → `ip_push_pending_frames` → `ip_local_out`, for one datagram
    /// whose transport bytes are `header` ++ `payload` (the protocol's header — UDP's 8 bytes,
    /// or none for a raw socket — then the caller's bytes), on a route already chosen.
    ///
    /// The datagram is built straight from the caller's bytes into skbs no longer than the
    /// path MTU: one, or — longer than the path — fragments of `(mtu − 20) & ~7` bytes (within
    /// what a pool buffer holds) sharing one identification, MF on all but the last. DF is set
    /// when it fits and `pathMTUDiscovery` is not `.dont`; a datagram that fits the path but not
    /// a pool buffer (a jumbo MTU) takes a 64 KiB buffer. Reads: the route (device, MTU,
    /// neighbour). Writes: one IP header per skb. Next: `ip_local_out`.
    /// Throws `noBufferSpace` (a pool empty: nothing is sent). Callers check the length
    /// against the path with `.do` (EMSGSIZE) before they build their header.
    func appendData(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, source: IPv4Address,
                    destination: IPv4Address, protocol number: IPProtocol, ttl: UInt8, tos: UInt8,
                    pathMTUDiscovery: PathMTUDiscovery, route: RouteResult, worker: Worker) throws(SocketError) {
        let mtu = Int(route.mtu)
        let total = header.count + payload.count
        let fits = IPv4Header.minimumLength + total <= mtu
        let dontFragment = pathMTUDiscovery != .dont && fits
        var failure: SocketError?
        withPacketBatch { batch in
            let identification = state(worker).nextIdentification()
            var offset = 0
            while offset < total {
                // What fits the path (a jumbo MTU) but not a pool buffer takes a 64 KiB one.
                guard let skb = fits ? allocateLarge(bytes: IPv4Header.minimumLength + total, worker: worker)
                    : worker.cache.allocate() else {
                    worker.cache.free(&batch)
                    failure = .noBufferSpace
                    return
                }
                let room = (skb.tailroom - IPv4Header.minimumLength) & ~7
                let unit = fits ? total : min((mtu - IPv4Header.minimumLength) & ~7, room)
                let length = min(total - offset, unit)
                guard length > 0, let ip = skb.put(IPv4Header.minimumLength + length) else {
                    worker.cache.free(skb)
                    worker.cache.free(&batch)
                    failure = .noBufferSpace
                    return
                }
                IPv4Repr(source: source, destination: destination, protocol: number, ttl: ttl,
                         payloadLength: length, identification: identification, dontFragment: dontFragment,
                         dscp: tos >> 2, ecn: tos & 0x03).emit(to: ip)
                let last = offset + length == total
                IPv4Header(unchecked: ip).flagsAndFragmentOffset = (dontFragment ? 0x4000 : 0) | (last ? 0 : 0x2000)
                    | UInt16(offset / 8)
                // The transport bytes [offset, offset + length) of header ++ payload.
                var written = 0
                let out = ip + IPv4Header.minimumLength
                if offset < header.count {
                    let n = min(header.count - offset, length)
                    out.copyMemory(from: header.baseAddress! + offset, byteCount: n)
                    written = n
                }
                if written < length, let base = payload.baseAddress {
                    let from = offset + written - header.count
                    (out + written).copyMemory(from: base + from, byteCount: length - written)
                }
                route.apply(to: skb)
                skb.resetNetworkHeader()
                skb.setTransportHeader(afterNetworkBytes: IPv4Header.minimumLength)
                if batch.isFull { ipLocalOut(&batch, worker: worker) }
                batch.append(skb)
                offset += length
            }
            ipLocalOut(&batch, worker: worker)
        }
        if let failure { throw failure }
        if number == .icmp, let type = (header.first ?? payload.first) {
            icmp.countOutput(ICMPType(rawValue: type), worker: worker)   // as __ip_make_skb does
        }
    }
}
