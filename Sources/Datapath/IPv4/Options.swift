import CDatapath
import DatapathCore
import DatapathWire

extension IPv4 {
    /// Linux: `ip_options_compile` as far as input needs it: every option well-formed (record
    /// route and timestamp pointers included), and no source route (LSRR, SSRR) while source
    /// routing is off.
    static func checkOptions(_ ip: IPv4Header, headerLength: Int) -> DropReason? {
        unsafe firstOptionError(ip.base, headerLength: headerLength, sourceRoutesToo: true)?.reason
    }

    /// ICMP parameter problem for a header whose options are malformed (Linux: the `error:`
    /// exit of `ip_options_compile`, pointer = the offending octet). Other header errors get
    /// no answer — a header that is not IPv4 (the version) above all: its "options" are
    /// whatever follows. (Found by the fuzzer: a version-3 header got a parameter problem.)
    func reportBadOptions(_ skb: SKB, worker: Worker) {
        let base = unsafe skb.data
        guard skb.length >= IPv4Header.minimumLength else { return }
        let header = unsafe IPv4Header(unchecked: base)
        let headerLength = header.headerLength
        guard header.version == 4, headerLength > IPv4Header.minimumLength, headerLength <= skb.length,
              skb.checksumState == .unnecessary || header.isChecksumValid,
              let error = unsafe IPv4.firstOptionError(base, headerLength: headerLength, sourceRoutesToo: false) else { return }
        skb.resetNetworkHeader()
        icmp.sendError(for: skb, type: .parameterProblem, code: ICMPCode.ParameterProblem.pointer,
                       info: UInt32(error.pointer) << 24, worker: worker)
    }

    /// The first option error in order, with the octet a parameter problem would point at:
    /// a malformed option or record route / timestamp (`.ipHeaderInvalid`), or — with
    /// `sourceRoutesToo` — a source route (`.ipSourceRouted`). Nil when there is none.
    static func firstOptionError(_ base: UnsafeMutableRawPointer, headerLength: Int,
                                 sourceRoutesToo: Bool) -> (reason: DropReason, pointer: Int)? {
        for option in unsafe IPv4OptionIterator(header: base, end: headerLength) {
            switch option {
            case .malformed(let offset):
                return (.ipHeaderInvalid, offset)
            case .option(let type, let offset, _, _) where type == .lsrr || type == .ssrr:
                if sourceRoutesToo { return (.ipSourceRouted, offset) }
            case .option(let type, let offset, _, let valueLength):
                if let pointer = unsafe optionProblem(type, header: base, offset: offset, length: valueLength &+ 2) {
                    return (.ipHeaderInvalid, pointer)
                }
            default:
                continue
            }
        }
        return nil
    }

    /// Where a record route or timestamp option of `length` octets at `offset` is malformed
    /// (RFC 791; Linux's checks in `ip_options_compile`): the octet a parameter problem points
    /// at, or nil. Record route: a pointer of at least 4 that, short of the end, leaves room for
    /// a whole address. Timestamp: a pointer of at least 5 leaving room for a whole entry of
    /// its flag (0: time; 1: address and time; 3: prespecified address and time; others are
    /// errors), or a full area whose overflow count can still grow.
    static func optionProblem(_ type: IPv4OptionType, header: UnsafeMutableRawPointer, offset: Int,
                              length: Int) -> Int? {
        let option = unsafe IPv4RecordingOption(unchecked: header + offset)
        if type == .recordRoute {
            guard length >= 3 else { return offset &+ 1 }
            let pointer = option.pointer
            if pointer < 4 || (pointer <= length && pointer &+ 3 > length) { return offset &+ 2 }
            return nil
        }
        guard type == .timestamp else { return nil }
        guard length >= 4 else { return offset &+ 1 }
        let pointer = option.pointer
        guard pointer >= 5 else { return offset &+ 2 }
        guard pointer <= length else { return option.overflow == 15 ? offset &+ 3 : nil }
        switch option.flag {
        case 0: return pointer &+ 3 > length ? offset &+ 2 : nil
        case 1, 3: return pointer &+ 7 > length ? offset &+ 2 : nil
        default: return offset &+ 3
        }
    }

    /// Records this router in a forwarded packet's options (Linux: `ip_forward_options`, with
    /// the timestamps `ip_options_compile` writes on input), for a header `ip_rcv` checked:
    /// record route gets the outgoing interface's address (`ip_rt_get_source`), a timestamp
    /// what `recordHop` writes. The header checksum is recomputed when anything changed.
    func ipForwardOptions(_ skb: SKB, worker: Worker) {
        let base = unsafe skb.data
        let headerLength = unsafe IPv4Header(unchecked: base).headerLength
        guard headerLength > IPv4Header.minimumLength else { return }
        var changed = false
        var source: IPv4Address?
        for case .option(let type, let offset, _, let valueLength) in unsafe IPv4OptionIterator(header: base, end: headerLength)
        where type == .recordRoute || type == .timestamp {
            let address: IPv4Address
            if let source {
                address = source
            } else {
                let nexthop = IPv4Address(hostOrder: UInt32(truncatingIfNeeded: skb.control1))
                address = addresses.sourceAddress(for: nexthop, ifindex: skb.outputIfindex, worker: worker)
                source = address
            }
            if unsafe recordHop(base + offset, type: type, length: valueLength &+ 2, address: address, worker: worker) { changed = true }
        }
        if changed { unsafe IPv4Header(unchecked: base).fillChecksum() }
    }

    /// Writes one hop into a record route or timestamp option at `option` (`length` octets,
    /// checked by `ip_rcv`): record route gets `address`; a timestamp gets the time in
    /// milliseconds since midnight UT and, by its flag, `address` too (1), or only the time
    /// when the prespecified address is one of ours (3). A full record route is left alone; a
    /// full timestamp counts one more overflow. Returns whether it wrote anything.
    func recordHop(_ option: UnsafeMutableRawPointer, type: IPv4OptionType, length: Int, address: IPv4Address,
                   worker: Worker?) -> Bool {
        let view = unsafe IPv4RecordingOption(unchecked: option)
        let pointer = view.pointer
        let slot = unsafe view.nextEntry
        if type == .recordRoute {
            guard pointer <= length else { return false }
            unsafe address.store(to: slot)
            view.pointer = pointer &+ 4
            return true
        }
        guard pointer <= length else {
            view.overflow &+= 1
            return true
        }
        switch view.flag {
        case 0:
            unsafe slot.storeBytes(of: IPv4.timestampNow().bigEndian, as: UInt32.self)
            view.pointer = pointer &+ 4
        case 1:
            unsafe address.store(to: slot)
            unsafe (slot + 4).storeBytes(of: IPv4.timestampNow().bigEndian, as: UInt32.self)
            view.pointer = pointer &+ 8
        default:  // 3: prespecified addresses
            guard unsafe addresses.isLocal(IPv4Address(loadingFrom: slot), worker: worker) else { return false }
            unsafe (slot + 4).storeBytes(of: IPv4.timestampNow().bigEndian, as: UInt32.self)
            view.pointer = pointer &+ 8
        }
        return true
    }

    /// The options a reply carries back (Linux: `ip_options_echo`, then `ip_options_build` on
    /// output): the request's record route and timestamp options copied, each with this host
    /// recorded twice where there is room — once for receiving the request, once for sending
    /// the reply, as Linux does — and `address` as this host's. Other options are not echoed
    /// (source routes never get this far). Writes at most 40 bytes at `out`; returns their
    /// length, padded with end-of-list octets to a multiple of 4.
    func echoOptions(of request: UnsafeMutableRawPointer, headerLength: Int, address: IPv4Address,
                     into out: UnsafeMutableRawPointer, worker: Worker?) -> Int {
        var written = 0
        for case .option(let type, let offset, _, let valueLength) in unsafe IPv4OptionIterator(header: request, end: headerLength)
        where type == .recordRoute || type == .timestamp {
            let length = valueLength &+ 2
            let option = unsafe out + written
            unsafe option.copyMemory(from: request + offset, byteCount: length)
            _ = unsafe recordHop(option, type: type, length: length, address: address, worker: worker)
            _ = unsafe recordHop(option, type: type, length: length, address: address, worker: worker)
            written &+= length
        }
        let padded = (written &+ 3) & ~3
        unsafe (out + written).initializeMemory(as: UInt8.self, repeating: IPv4OptionType.end.rawValue, count: padded &- written)
        written = padded
        return written
    }

    /// RFC 791's internet timestamp: milliseconds since midnight UT.
    static func timestampNow() -> UInt32 {
        let milliseconds = CDatapath_realtime_ns() / 1_000_000
        return UInt32(milliseconds % 86_400_000)
    }
}
