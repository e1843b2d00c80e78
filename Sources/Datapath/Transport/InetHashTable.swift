import DatapathCore
import DatapathWire
import Synchronization

/// One protocol's bound sockets (Linux: `struct udp_table` with `__udp4_lib_lookup` and
/// `udp_lib_get_port`, and `raw_v4_hashinfo` for raw), by local port.
///
/// Lookup follows Linux's `compute_score`: a socket matches a packet when its port equals the
/// destination port, its bound address (if any) equals the destination address, its connected
/// peer (if any) equals the source, and its bound device (if any) equals the input device; each
/// of those it specifies counts 4, so a connected socket beats one bound to the address, which
/// beats a wildcard one. Ties go to the socket bound last. Among the members of an
/// SO_REUSEPORT group the flow hash picks one, so a group spreads flows over its members (Linux:
/// `reuseport_select_sock`) — one per worker is how a server spreads over the workers.
///
/// Binds, connects and closes take a lock and publish a new table; workers look up in a
/// `Snapshot` of it without one (a generation compare per batch).
public final class InetHashTable: @unchecked Sendable {
    /// A socket as the table knows it: an id the owner maps back to its socket object.
    public struct Entry: Sendable, Equatable {
        public let socket: UInt32
        public var local: SocketAddress
        public var remote: SocketAddress?
        /// Bound to one device (`SO_BINDTODEVICE`), or 0.
        public var ifindex: Int
        public var options: BindOptions
        /// Bind order, for ties.
        var sequence: UInt64
        /// The address was chosen by `connect`, not bound (Linux: no `SOCK_BINDADDR_LOCK`):
        /// disconnecting returns the socket to the wildcard.
        var addressFromConnect = false
    }

    /// Sharing asked for at bind time.
    public struct BindOptions: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// `SO_REUSEADDR`: share the address and port with other sockets that set it too.
        public static let reuseAddress = BindOptions(rawValue: 1)
        /// `SO_REUSEPORT`: join the group of sockets on the address and port that set it.
        public static let reusePort = BindOptions(rawValue: 2)
    }

    /// Linux's `net.ipv4.ip_local_port_range` default.
    public static let ephemeralPorts: ClosedRange<UInt16> = 32768...60999

    struct Tables: Sendable {
        var byPort: [UInt16: [Entry]] = [:]
        /// Socket id → the port it is bound to.
        var portOf: [UInt32: UInt16] = [:]
        var sequence: UInt64 = 0
        var nextEphemeral: UInt16
    }

    let state: Lock<Tables>
    let published: Snapshot<[UInt16: [Entry]]>
    /// The same entries by socket, for a worker's send (`entry(_:worker:)`): one lookup in its
    /// own copy instead of the lock and two lookups of `entry(_:)`.
    let publishedBySocket: Snapshot<[UInt32: Entry]>
    public let ephemeralPorts: ClosedRange<UInt16>

    /// A table read by `workers` workers.
    public init(workers: Int, ephemeralPorts: ClosedRange<UInt16> = InetHashTable.ephemeralPorts) {
        self.ephemeralPorts = ephemeralPorts
        let span = UInt32(ephemeralPorts.upperBound - ephemeralPorts.lowerBound) + 1
        let start = ephemeralPorts.lowerBound &+ UInt16(truncatingIfNeeded: UInt32.random(in: 0..<span))
        state = Lock(Tables(nextEphemeral: start))
        published = Snapshot([:], workers: workers)
        publishedBySocket = Snapshot([:], workers: workers)
    }

    /// Publishes both views of `tables` (under the lock).
    private func publish(_ tables: Tables) {
        published.publish(tables.byPort)
        var bySocket: [UInt32: Entry] = [:]
        for list in tables.byPort.values { for entry in list { bySocket[entry.socket] = entry } }
        publishedBySocket.publish(bySocket)
    }

    // MARK: Control plane

    /// Binds `socket` to `local` (Linux: `inet_bind` → `udp_v4_get_port`); port 0 takes a free
    /// ephemeral port, searched from a random start (`udp_lib_get_port`). Returns the address
    /// bound. Whether the address is local is the caller's to check (it knows the addresses).
    @discardableResult
    public func bind(_ socket: UInt32, to local: SocketAddress, ifindex: Int = 0,
                     options: BindOptions = []) throws(SocketError) -> SocketAddress {
        try state.withLock { (tables: inout Tables) throws(SocketError) -> SocketAddress in
            if let (port, i) = InetHashTable.locate(socket, in: tables) {
                throw .alreadyBound(tables.byPort[port]![i].local)
            }
            var address = local
            if address.port == 0 {
                address.port = try freePort(for: address, ifindex: ifindex, options: options, in: &tables)
            } else if conflict(address, ifindex: ifindex, options: options, in: tables) != nil {
                throw .addressInUse(address)
            }
            tables.sequence &+= 1
            tables.byPort[address.port, default: []].append(
                Entry(socket: socket, local: address, remote: nil, ifindex: ifindex, options: options,
                      sequence: tables.sequence))
            tables.portOf[socket] = address.port
            publish(tables)
            return address
        }
    }

    /// Sets (or, with nil, clears) the peer of a bound socket (Linux: `ip4_datagram_connect`'s
    /// part in the table: `inet->inet_daddr`, `inet_dport`). A wildcard-bound socket given a
    /// `source` becomes bound to it (`inet_rcv_saddr` set and the socket rehashed); clearing
    /// the peer returns an address chosen that way to the wildcard (`__udp_disconnect`).
    public func connect(_ socket: UInt32, to remote: SocketAddress?, source: IPv4Address? = nil) {
        state.withLock { tables in
            guard let (port, i) = InetHashTable.locate(socket, in: tables) else { return }
            var entry = tables.byPort[port]![i]
            entry.remote = remote
            if remote == nil, entry.addressFromConnect {
                entry.local.address = .zero
                entry.addressFromConnect = false
            } else if let source, !source.isZero, entry.local.address.isZero {
                entry.local.address = source
                entry.addressFromConnect = true
            }
            tables.byPort[port]![i] = entry
            publish(tables)
        }
    }

    /// Removes `socket` (Linux: `udp_lib_unhash`); returns whether it was there.
    @discardableResult
    public func close(_ socket: UInt32) -> Bool {
        state.withLock { tables in
            guard let (port, i) = InetHashTable.locate(socket, in: tables) else { return false }
            tables.byPort[port]!.remove(at: i)
            if tables.byPort[port]!.isEmpty { tables.byPort[port] = nil }
            tables.portOf[socket] = nil
            publish(tables)
            return true
        }
    }

    /// Where socket `id` sits: its port and its place in the port's list.
    static func locate(_ id: UInt32, in tables: Tables) -> (port: UInt16, index: Int)? {
        guard let port = tables.portOf[id], let i = tables.byPort[port]?.firstIndex(where: { $0.socket == id }) else {
            return nil
        }
        return (port, i)
    }

    /// Socket `id`'s entry as `worker` sees the table (its copy of the last publication: one
    /// lookup, no lock).
    public func entry(_ id: UInt32, worker: Worker) -> Entry? { publishedBySocket.read(worker)[id] }

    /// The table's entry for socket `id`, if bound (a lock; one port's list is searched).
    public func entry(_ id: UInt32) -> Entry? {
        state.withLock { tables in InetHashTable.locate(id, in: tables).map { tables.byPort[$0.port]![$0.index] } }
    }

    /// Every bound socket, by port then bind order (`ss -uan`).
    public var entries: [Entry] {
        let table = published.value
        return table.keys.sorted().flatMap { table[$0]!.sorted { $0.sequence < $1.sequence } }
    }

    /// The socket that keeps `address` from being bound with `options`, if any (Linux:
    /// `udp_lib_lport_inuse`): same port, overlapping addresses (equal, or either a wildcard),
    /// overlapping devices, and not both sharing.
    func conflict(_ address: SocketAddress, ifindex: Int, options: BindOptions, in tables: Tables) -> Entry? {
        tables.byPort[address.port]?.first { other in
            let addressesOverlap = other.local.address.isZero || address.address.isZero
                || other.local.address == address.address
            let devicesOverlap = other.ifindex == 0 || ifindex == 0 || other.ifindex == ifindex
            guard addressesOverlap && devicesOverlap else { return false }
            if options.contains(.reuseAddress) && other.options.contains(.reuseAddress) { return false }
            if options.contains(.reusePort) && other.options.contains(.reusePort) { return false }
            return true
        }
    }

    func freePort(for address: SocketAddress, ifindex: Int, options: BindOptions,
                  in tables: inout Tables) throws(SocketError) -> UInt16 {
        let low = ephemeralPorts.lowerBound, high = ephemeralPorts.upperBound
        var candidate = tables.nextEphemeral
        for _ in 0...Int(high - low) {
            if candidate < low || candidate > high { candidate = low }
            let probe = SocketAddress(address.address, candidate)
            // An automatic port is never shared: any socket on it is a conflict.
            if tables.byPort[candidate] == nil || conflict(probe, ifindex: ifindex, options: [], in: tables) == nil {
                tables.nextEphemeral = candidate == high ? low : candidate &+ 1
                return candidate
            }
            candidate = candidate == high ? low : candidate &+ 1
        }
        throw .noFreePort(ephemeralPorts)
    }

    // MARK: Workers

    /// The socket a packet from `source` to `destination` arriving on `ifindex` belongs to
    /// (Linux: `__udp4_lib_lookup` with `compute_score` and `reuseport_select_sock`), nil when
    /// none. `hash` picks the member of an SO_REUSEPORT group.
    @inline(__always)
    public func lookup(source: SocketAddress, destination: SocketAddress, ifindex: Int, hash: UInt32,
                       worker: Worker) -> UInt32? {
        guard let list = published.read(worker)[destination.port] else { return nil }
        return InetHashTable.select(list, source: source, destination: destination, ifindex: ifindex, hash: hash)
    }

    /// Every socket a broadcast or multicast datagram reaches (Linux: `__udp4_lib_mcast_deliver`
    /// with `__udp_is_mcast_sock`): each bound to the port whose address (wildcard, or the
    /// destination), peer and device match — not only the best, and no reuseport choice.
    /// Calls `body` for each, in bind order; returns how many.
    @discardableResult
    package func forEachMatch(source: SocketAddress, destination: SocketAddress, ifindex: Int, worker: Worker,
                             _ body: (UInt32) -> Void) -> Int {
        guard let list = published.read(worker)[destination.port] else { return 0 }
        var count = 0
        for entry in list where InetHashTable.score(entry, source: source, destination: destination, ifindex: ifindex) != nil {
            body(entry.socket)
            count += 1
        }
        return count
    }

    /// One port's sockets as this worker's table has them (nil: none): for a caller that
    /// looks up many packets to one port with `select`, one table probe for the lot.
    @inline(__always)
    public func sockets(port: UInt16, worker: Worker) -> [Entry]? { published.read(worker)[port] }

    /// The same, against the published table (the control plane, tests).
    public func lookup(source: SocketAddress, destination: SocketAddress, ifindex: Int, hash: UInt32) -> UInt32? {
        guard let list = published.value[destination.port] else { return nil }
        return InetHashTable.select(list, source: source, destination: destination, ifindex: ifindex, hash: hash)
    }

    /// Linux's `compute_score` over one port's sockets, the best kept; a reuseport winner hands
    /// over to its group's member for `hash`.
    @inline(__always)
    static func select(_ list: [Entry], source: SocketAddress, destination: SocketAddress, ifindex: Int,
                       hash: UInt32) -> UInt32? {
        // A port with one socket (a server's) — the usual case — needs no comparison; inline,
        // so the caller's list is not retained around a call.
        if list.count == 1, !list[0].options.contains(.reusePort) {
            return score(list[0], source: source, destination: destination, ifindex: ifindex) != nil ? list[0].socket : nil
        }
        return selectAmong(list, source: source, destination: destination, ifindex: ifindex, hash: hash)
    }

    /// `select` for a port with more than one socket, or a reuseport one.
    @inline(never)
    static func selectAmong(_ list: [Entry], source: SocketAddress, destination: SocketAddress, ifindex: Int,
                            hash: UInt32) -> UInt32? {
        var best = -1
        var bestScore = -1
        for (i, entry) in list.enumerated() {
            guard let score = score(entry, source: source, destination: destination, ifindex: ifindex) else { continue }
            if score > bestScore || (score == bestScore && entry.sequence > list[best].sequence) {
                best = i
                bestScore = score
            }
        }
        guard best >= 0 else { return nil }
        let winner = list[best]
        guard winner.options.contains(.reusePort) else { return winner.socket }
        let group = list.filter {
            $0.options.contains(.reusePort) && $0.local == winner.local && $0.ifindex == winner.ifindex
                && score($0, source: source, destination: destination, ifindex: ifindex) == bestScore
        }.sorted { $0.sequence < $1.sequence }
        // reciprocal_scale: the hash's top bits pick a member evenly.
        let member = Int((UInt64(hash) &* UInt64(group.count)) >> 32)
        return group[member].socket
    }

    /// Nil when `entry` cannot take the packet; else 4 per field it pins that matches.
    static func score(_ entry: Entry, source: SocketAddress, destination: SocketAddress, ifindex: Int) -> Int? {
        var score = 0
        if !entry.local.address.isZero {
            guard entry.local.address == destination.address else { return nil }
            score += 4
        }
        if let remote = entry.remote {
            guard remote.address.isZero || remote.address == source.address else { return nil }
            guard remote.port == 0 || remote.port == source.port else { return nil }
            score += remote.address.isZero ? 0 : 4
            score += remote.port == 0 ? 0 : 4
        }
        if entry.ifindex != 0 {
            guard entry.ifindex == ifindex else { return nil }
            score += 4
        }
        return score
    }
}
