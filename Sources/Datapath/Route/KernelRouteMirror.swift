import DatapathCore
import DatapathWire
import Dispatch
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Follows the network namespace's kernel routing table and static neighbours into the stack
/// over rtnetlink (the role of VPP's linux-cp route and neighbour sync): a routing daemon —
/// BIRD, FRR — or `ip route add` installs routes into the kernel as usual, and the datapath
/// forwards by them without either knowing of the other.
///
/// What is followed: the main table's IPv4 routes that the kernel did not make itself
/// (`proto kernel`: the connected routes of addresses, which the stack makes from its own
/// `addr add`) — unicast through a gateway or onto a link, multipath (`RTA_MULTIPATH`, weights
/// from `rtnh_hops`), blackhole, unreachable and prohibit, with their metric (`RTA_PRIORITY`)
/// and MTU (`RTAX_MTU`) — and permanent neighbours (`ip neigh add … nud permanent`). A kernel
/// interface maps to the stack's link of the same name, or to the link that drives it over
/// AF_PACKET; a route through an interface the stack has neither of is skipped (and said once
/// in the log). On start the tables are dumped and applied as one batch; after that each burst
/// of RTM_NEWROUTE/RTM_DELROUTE/RTM_NEWNEIGH/RTM_DELNEIGH messages is applied as one batch (a
/// batch the stack refuses is applied line by line, what fails logged). A socket overrun
/// (ENOBUFS: the kernel dropped messages) dumps again and removes what is gone.
public final class KernelRouteMirror: @unchecked Sendable {
    let stack: Stack
    let logger: Logger
    let fd: Int32
    let stopping = Atomic<Bool>(false)
    let started = Atomic<Bool>(false)
    let done = DispatchSemaphore(value: 0)
    /// What this mirror installed: "PREFIX metric M" → the kernel route's line, for resyncs.
    var installed: [String: String] = [:]
    /// Interfaces already reported as not the stack's.
    var reported: Set<String> = []
    /// Batches applied, lines applied, lines the stack refused (tests, the exit report).
    let countsLock = Lock<(batches: Int, lines: Int, refused: Int)>((0, 0, 0))

    /// Opens the rtnetlink socket (subscribed to IPv4 route and neighbour changes). Throws a
    /// `StackError.kernel` with the errno's words when the socket cannot be made.
    public init(stack: Stack, logger: Logger) throws {
        self.stack = stack
        self.logger = logger
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0 /* NETLINK_ROUTE */)
        guard fd >= 0 else { throw KernelRouteMirror.Failure(unsafe "rtnetlink socket: \(String(cString: strerror(errno)))") }
        var size: Int32 = 4 << 20
        _ = unsafe setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        _ = unsafe setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // sockaddr_nl: family, pad, pid (0: the kernel assigns), groups.
        var address = [UInt8](repeating: 0, count: 12)
        unsafe address.withUnsafeMutableBytes { raw in
            unsafe raw.storeBytes(of: UInt16(AF_NETLINK), as: UInt16.self)
            unsafe raw.storeBytes(of: KernelRouteMirror.groups, toByteOffset: 8, as: UInt32.self)
        }
        let bound = unsafe address.withUnsafeBytes { raw in
            unsafe bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), 12)
        }
        guard bound == 0 else {
            let reason = unsafe String(cString: strerror(errno))
            close(fd)
            throw KernelRouteMirror.Failure("rtnetlink bind: \(reason)")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Why the mirror could not start.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE.
    static let groups: UInt32 = 0x4 | 0x40

    /// Dumps the kernel's routes and neighbours, applies them, and follows changes on a thread
    /// of its own until `stop`. Throws when the first dump cannot be read.
    public func start() throws {
        try resync()
        started.store(true, ordering: .relaxed)
        DispatchQueue(label: "datapath.kernel-route-mirror").async { [self] in
            follow()
            done.signal()
        }
    }

    /// Stops following (within 200 ms).
    public func stop() {
        guard !stopping.exchange(true, ordering: .relaxed), started.load(ordering: .relaxed) else { return }
        done.wait()
    }

    /// Batches applied, lines in them, lines the stack refused.
    public var statistics: (batches: Int, lines: Int, refused: Int) { countsLock.withLock { $0 } }

    // MARK: The socket

    /// Reads bursts of change messages and applies each burst as a batch.
    func follow() {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while !stopping.load(ordering: .relaxed) {
            var lines: [String] = []
            var overrun = false
            // Everything waiting now is one burst (a daemon installs routes in bursts).
            while true {
                let got = unsafe buffer.withUnsafeMutableBytes { unsafe recv(fd, $0.baseAddress, $0.count, lines.isEmpty ? 0 : Int32(MSG_DONTWAIT)) }
                if got < 0 {
                    if errno == ENOBUFS { overrun = true }
                    break
                }
                unsafe buffer.withUnsafeBytes { raw in
                    unsafe lines += translate(UnsafeRawBufferPointer(rebasing: raw.prefix(got)))
                }
                if lines.count > 100_000 { break }
            }
            if overrun {
                logger.warning("kernel route mirror: the socket overran (the kernel dropped messages): dumping again")
                try? resync()
                continue
            }
            if !lines.isEmpty { apply(lines) }
        }
    }

    /// Dumps the kernel's main table and neighbours and makes the stack match: what the
    /// kernel has, replaced; what this mirror installed and the kernel no longer has, removed.
    func resync() throws {
        var lines: [String] = []
        var seen: Set<String> = []
        for (type, family) in [(UInt16(26), UInt8(AF_INET)), (UInt16(30), UInt8(AF_INET))] {   // RTM_GETROUTE, RTM_GETNEIGH
            try request(type: type, family: family)
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var finished = false
            while !finished {
                let got = unsafe buffer.withUnsafeMutableBytes { unsafe recv(fd, $0.baseAddress, $0.count, 0) }
                if got < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure("rtnetlink dump: no answer") }
                    if errno == EINTR { continue }
                    throw Failure(unsafe "rtnetlink dump: \(String(cString: strerror(errno)))")
                }
                unsafe buffer.withUnsafeBytes { raw in
                    let part = unsafe UnsafeRawBufferPointer(rebasing: raw.prefix(got))
                    finished = unsafe KernelRouteMirror.containsDone(part)
                    for line in unsafe translate(part) {
                        lines.append(line)
                        if let key = KernelRouteMirror.routeKey(line) { seen.insert(key) }
                    }
                }
            }
        }
        for (key, _) in installed where !seen.contains(key) {
            let parts = key.split(separator: " ")
            lines.append("route del \(parts[0]) metric \(parts[2])")
        }
        if !lines.isEmpty { apply(lines) }
    }

    /// Sends a dump request for `type` in address family `family`.
    func request(type: UInt16, family: UInt8) throws {
        var message = [UInt8](repeating: 0, count: 16 + 12)
        unsafe message.withUnsafeMutableBytes { raw in
            unsafe raw.storeBytes(of: UInt32(28), as: UInt32.self)
            unsafe raw.storeBytes(of: type, toByteOffset: 4, as: UInt16.self)
            unsafe raw.storeBytes(of: UInt16(0x301), toByteOffset: 6, as: UInt16.self)   // NLM_F_REQUEST | NLM_F_DUMP
            unsafe raw.storeBytes(of: UInt32(1), toByteOffset: 8, as: UInt32.self)
            unsafe raw.storeBytes(of: family, toByteOffset: 16, as: UInt8.self)
        }
        var kernel = [UInt8](repeating: 0, count: 12)
        unsafe kernel.withUnsafeMutableBytes { unsafe $0.storeBytes(of: UInt16(AF_NETLINK), as: UInt16.self) }
        let sent = unsafe message.withUnsafeBytes { raw in
            unsafe kernel.withUnsafeBytes { to in
                unsafe sendto(fd, raw.baseAddress, raw.count, 0, to.baseAddress!.assumingMemoryBound(to: sockaddr.self), 12)
            }
        }
        guard sent == message.count else { throw Failure(unsafe "rtnetlink request: \(String(cString: strerror(errno)))") }
    }

    /// Applies `lines` as one batch; a refused batch line by line, each failure logged.
    func apply(_ lines: [String]) {
        var refused = 0
        do {
            _ = try stack.apply(lines.joined(separator: "\n"))
        } catch {
            for line in lines {
                do { _ = try stack.apply(line, logLevel: .info) } catch {
                    refused += 1
                    logger.info("kernel route mirror: '\(line)' not applied: \(error)")
                }
            }
        }
        for line in lines { record(line) }
        countsLock.withLock { counts in
            counts.batches += 1
            counts.lines += lines.count
            counts.refused += refused
        }
    }

    /// Remembers what is installed (for the next resync).
    func record(_ line: String) {
        guard let key = KernelRouteMirror.routeKey(line) else { return }
        if line.hasPrefix("route del") { installed[key] = nil } else { installed[key] = line }
    }

    /// "PREFIX metric M" of a route line, nil for other lines.
    static func routeKey(_ line: String) -> String? {
        let words = line.split(separator: " ")
        guard words.count >= 3, words[0] == "route" else { return nil }
        var index = 2
        if ["blackhole", "unreachable", "prohibit"].contains(words[index]) { index += 1 }
        guard index < words.count else { return nil }
        let metric = words.firstIndex(of: "metric").flatMap { $0 + 1 < words.count ? words[$0 + 1] : nil } ?? "0"
        return "\(words[index]) metric \(metric)"
    }

    // MARK: Messages → commands

    /// The stack's link name for kernel interface `index`, nil when the stack has none.
    func linkName(kernelIndex index: Int32) -> String? {
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard unsafe if_indextoname(UInt32(bitPattern: index), &name) != nil else { return nil }
        let kernelName = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if stack.link(named: kernelName) != nil { return kernelName }
        if let link = stack.links.first(where: { ($0.device as? AFPacketDevice)?.interface == kernelName }) {
            return link.name
        }
        if !reported.contains(kernelName) {
            reported.insert(kernelName)
            logger.info("kernel route mirror: routes through \(kernelName) skipped: not one of the stack's links")
        }
        return nil
    }

    /// The command-language lines for the messages in `bytes`.
    func translate(_ bytes: UnsafeRawBufferPointer) -> [String] {
        unsafe KernelRouteMirror.translate(bytes) { self.linkName(kernelIndex: $0) }
    }

    /// Whether `bytes` hold the NLMSG_DONE that ends a dump.
    static func containsDone(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var done = false
        unsafe forEachMessage(bytes) { type, _ in if type == 3 || type == 2 { done = true } }
        return done
    }

    /// Calls `body` with each netlink message's type and payload (after the 16-byte header).
    static func forEachMessage(_ bytes: UnsafeRawBufferPointer, _ body: (UInt16, UnsafeRawBufferPointer) -> Void) {
        var offset = 0
        while offset + 16 <= bytes.count {
            let length = unsafe Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            guard length >= 16, offset + length <= bytes.count else { return }
            let type = unsafe bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self)
            unsafe body(type, UnsafeRawBufferPointer(rebasing: bytes[(offset + 16)..<(offset + length)]))
            offset += (length + 3) & ~3
        }
    }

    /// Calls `body` with each attribute's type (flags masked off) and value in `bytes`.
    static func forEachAttribute(_ bytes: UnsafeRawBufferPointer, _ body: (UInt16, UnsafeRawBufferPointer) -> Void) {
        var offset = 0
        while offset + 4 <= bytes.count {
            let length = unsafe Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            guard length >= 4, offset + length <= bytes.count else { return }
            let type = unsafe bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3FFF
            unsafe body(type, UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + length)]))
            offset += (length + 3) & ~3
        }
    }

    static func address(_ value: UnsafeRawBufferPointer) -> IPv4Address? {
        guard value.count == 4 else { return nil }
        return unsafe IPv4Address(value[0], value[1], value[2], value[3])
    }

    /// The lines for rtnetlink messages (RTM_NEWROUTE 24, RTM_DELROUTE 25, RTM_NEWNEIGH 28,
    /// RTM_DELNEIGH 29; others ignored), kernel interfaces named through `link`.
    static func translate(_ bytes: UnsafeRawBufferPointer, link: (Int32) -> String?) -> [String] {
        var lines: [String] = []
        unsafe forEachMessage(bytes) { type, payload in
            switch type {
            case 24, 25: if let line = unsafe routeLine(payload, delete: type == 25, link: link) { lines.append(line) }
            case 28, 29: if let line = unsafe neighbourLine(payload, delete: type == 29, link: link) { lines.append(line) }
            default: break
            }
        }
        return lines
    }

    /// `route replace …` / `route del …` for one rtmsg, nil for what is not followed.
    static func routeLine(_ payload: UnsafeRawBufferPointer, delete: Bool, link: (Int32) -> String?) -> String? {
        guard payload.count >= 12, unsafe payload[0] == UInt8(AF_INET) else { return nil }
        let prefixLength = unsafe Int(payload[1])
        var table = unsafe UInt32(payload[4])
        let protocolNumber = unsafe payload[5]
        let routeType = unsafe payload[7]
        guard protocolNumber != 2 else { return nil }   // RTPROT_KERNEL: an address's own route
        var destination = IPv4Address.zero
        var gateway: IPv4Address?
        var oif: Int32 = 0
        var metric: UInt32 = 0
        var mtu = 0
        var hops: [(IPv4Address?, Int32, Int)] = []
        unsafe forEachAttribute(UnsafeRawBufferPointer(rebasing: payload[12...])) { type, value in
            switch type {
            case 1: destination = unsafe address(value) ?? .zero                                         // RTA_DST
            case 4 where value.count == 4: oif = unsafe value.loadUnaligned(as: Int32.self)              // RTA_OIF
            case 5: gateway = unsafe address(value)                                                       // RTA_GATEWAY
            case 6 where value.count == 4: metric = unsafe value.loadUnaligned(as: UInt32.self)          // RTA_PRIORITY
            case 15 where value.count == 4: table = unsafe value.loadUnaligned(as: UInt32.self)          // RTA_TABLE
            case 8:                                                                                // RTA_METRICS
                unsafe forEachAttribute(value) { metricType, metricValue in
                    if metricType == 2, metricValue.count == 4 { mtu = unsafe Int(metricValue.loadUnaligned(as: UInt32.self)) }
                }
            case 9:                                                                                // RTA_MULTIPATH
                var offset = 0
                while offset + 8 <= value.count {
                    let length = unsafe Int(value.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
                    guard length >= 8, offset + length <= value.count else { break }
                    let weight = unsafe Int(value[offset + 3]) + 1
                    let index = unsafe value.loadUnaligned(fromByteOffset: offset + 4, as: Int32.self)
                    var hopGateway: IPv4Address?
                    unsafe forEachAttribute(UnsafeRawBufferPointer(rebasing: value[(offset + 8)..<(offset + length)])) { t, v in
                        if t == 5 { hopGateway = unsafe address(v) }
                    }
                    hops.append((hopGateway, index, weight))
                    offset += (length + 3) & ~3
                }
            default: break
            }
        }
        guard table == 254 else { return nil }   // RT_TABLE_MAIN
        guard let prefix = IPv4Prefix(address: destination, length: prefixLength) else { return nil }
        let metricWords = metric != 0 ? " metric \(metric)" : ""
        if delete { return "route del \(prefix)\(metricWords)" }
        let types: [UInt8: String] = [6: "blackhole", 7: "unreachable", 8: "prohibit"]
        if let name = types[routeType] { return "route replace \(name) \(prefix)\(metricWords)" }
        guard routeType == 1 else { return nil }   // RTN_UNICAST; local and broadcast are the addresses'
        let mtuWords = mtu != 0 ? " mtu \(mtu)" : ""
        if !hops.isEmpty {
            var line = "route replace \(prefix)\(metricWords)\(mtuWords)"
            for (hopGateway, index, weight) in hops {
                guard let device = link(index) else { return nil }
                line += " nexthop" + (hopGateway.map { " via \($0)" } ?? "") + " dev \(device) weight \(weight)"
            }
            return line
        }
        guard let device = link(oif) else { return nil }
        return "route replace \(prefix)" + (gateway.map { " via \($0)" } ?? "") + " dev \(device)\(metricWords)\(mtuWords)"
    }

    /// `neigh add … nud permanent` / `neigh del …` for one ndmsg of a permanent neighbour.
    static func neighbourLine(_ payload: UnsafeRawBufferPointer, delete: Bool, link: (Int32) -> String?) -> String? {
        guard payload.count >= 12, unsafe payload[0] == UInt8(AF_INET) else { return nil }
        let index = unsafe payload.loadUnaligned(fromByteOffset: 4, as: Int32.self)
        let state = unsafe payload.loadUnaligned(fromByteOffset: 8, as: UInt16.self)
        guard delete || state & 0x80 != 0 else { return nil }   // NUD_PERMANENT only
        var destination: IPv4Address?
        var mac: MACAddress?
        unsafe forEachAttribute(UnsafeRawBufferPointer(rebasing: payload[12...])) { type, value in
            if type == 1 { destination = unsafe address(value) }
            if type == 2, value.count == 6 { mac = unsafe MACAddress(value[0], value[1], value[2], value[3], value[4], value[5]) }
        }
        guard let destination, let device = link(index) else { return nil }
        if delete { return state & 0x80 != 0 ? "neigh del \(destination) dev \(device)" : nil }
        guard let mac else { return nil }
        return "neigh add \(destination) lladdr \(mac) dev \(device) nud permanent"
    }
}
