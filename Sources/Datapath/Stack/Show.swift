import DatapathCore
import DatapathWire

extension Stack {
    /// The links as `ip link show` prints them.
    public func showLinks() -> String {
        links.sorted { $0.device.ifindex < $1.device.ifindex }.map { link in
            let device = link.device
            let adminUp = core.isAdminUp(ifindex: device.ifindex)
            let lowerUp = adminUp && device.isUp
            if device is LoopbackDevice {
                return "\(device.ifindex): lo: <LOOPBACK\(adminUp ? ",UP" : "")\(lowerUp ? ",LOWER_UP" : "")> mtu "
                    + "\(core.mtu(ifindex: device.ifindex)) qdisc noqueue state UNKNOWN"
                    + "\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00"
            }
            var flags = ["BROADCAST", "MULTICAST"]
            if case .bond = link.kind { flags.insert("MASTER", at: 0) }
            if link.master != nil, link.master.flatMap({ self.link(named: $0)?.device as? BondDevice }) != nil {
                flags.insert("SLAVE", at: 0)
            }
            if adminUp { flags.append("UP") }
            if lowerUp { flags.append("LOWER_UP") }
            var line = "\(device.ifindex): \(device.name): <\(flags.joined(separator: ","))> mtu \(core.mtu(ifindex: device.ifindex))"
            switch link.kind {
            case .bond, .bridge: line += " qdisc noqueue"
            case .device, .afpacket: line += " qdisc pfifo"
            }
            if let master = link.master { line += " master \(master)" }
            line += " state \(lowerUp ? "UP" : "DOWN")"
            line += "\n    link/ether \(device.macAddress) brd ff:ff:ff:ff:ff:ff"
            switch link.kind {
            case .afpacket(let interface): line += "\n    afpacket dev \(interface)"
            case .bond(let mode, let policy):
                line += "\n    bond mode \(mode.rawValue)"
                if mode == .balanceXOR { line += " xmit_hash_policy \(policy.rawValue)" }
                if let bond = device as? BondDevice, mode == .activeBackup {
                    line += " active_slave \(bond.activeSlave?.device.name ?? "none") failovers \(bond.failovers)"
                }
            case .bridge: line += "\n    bridge ageing_time \((device as? BridgeDevice).map { $0.fdb.ageingTime.components.seconds } ?? 0)s"
            case .device: break
            }
            return line
        }.joined(separator: "\n")
    }

    /// Every bridge's FDB as `bridge fdb show` prints it: learned entries, then static and the
    /// bridge's own (permanent) addresses.
    public func showFDB() -> String {
        let now = clock.now()
        return bridges.flatMap { bridge in
            bridge.fdb.entries(now: now).sorted { ($0.port, $0.address.description) < ($1.port, $1.address.description) }
                .map { entry in
                    let port = entry.port < bridge.ports.count ? bridge.ports[entry.port].device.name : "?"
                    var line = "\(entry.address) dev \(port) master \(bridge.name)"
                    if entry.isLocal { line += " permanent" } else if entry.isStatic { line += " static" }
                    else { line += " used \(entry.age.components.seconds)s" }
                    return line
                }
        }.joined(separator: "\n")
    }

    /// The routes as `ip route show table all` would list them, devices by name:
    /// `198.19.0.0/16 via 198.18.2.2 dev eth1 metric 10`, `local 198.18.1.1 dev eth0`.
    public func showRoutes() -> String {
        fib.routes.map { route in
            var line = route.type == .unicast ? "" : "\(route.type) "
            line += route.prefix.length == 0 ? "default" : route.prefix.length == 32 && route.type != .unicast
                ? "\(route.prefix.address)" : "\(route.prefix)"
            if route.nexthops.isEmpty {
                if let gateway = route.gateway { line += " via \(gateway)" }
                if route.ifindex != 0 { line += " dev \(core.devices[route.ifindex]?.name ?? "?")" }
            }
            if route.metric != 0 { line += " metric \(route.metric)" }
            if route.mtu != 0 { line += " mtu \(route.mtu)" }
            // As `ip route` prints a multipath route: one tab-indented line per next hop.
            for hop in route.nexthops {
                line += "\n\tnexthop"
                if let gateway = hop.gateway { line += " via \(gateway)" }
                line += " dev \(core.devices[hop.ifindex]?.name ?? "?") weight \(hop.weight)"
            }
            return line
        }.joined(separator: "\n")
    }

    /// The routing table in counts, for a table too large to list (FRR's `show ip route
    /// summary`): `routes 1000003: unicast 1000000, local 1, broadcast 2; prefixes /0–/15 3,
    /// /16–/24 1000000, /25–/32 3; trie 4.2 MiB`.
    public func showRouteSummary() -> String {
        let routes = fib.unorderedRoutes
        var byType: [RouteType: Int] = [:]
        var byLength = [0, 0, 0]
        for route in routes {
            byType[route.type, default: 0] += 1
            byLength[route.prefix.length < 16 ? 0 : route.prefix.length <= 24 ? 1 : 2] += 1
        }
        let types = RouteType.allCases.compactMap { type in
            byType[type].map { "\(type == .unicast ? "unicast" : type.description) \($0)" }
        }
        let tenths = (fib.snapshot.memoryBytes * 10 + 524_288) / 1_048_576
        return "routes \(routes.count): " + types.joined(separator: ", ")
            + "; prefixes /0–/15 \(byLength[0]), /16–/24 \(byLength[1]), /25–/32 \(byLength[2])"
            + "; trie \(tenths / 10).\(tenths % 10) MiB"
    }

    /// The neighbour table as `ip neigh show` prints it.
    public func showNeighbours() -> String {
        neighbours.snapshot().map(\.description).joined(separator: "\n")
    }

    /// Addresses as `ip -brief addr` would group them: `198.18.0.1/24 dev eth0`.
    public func showAddresses() -> String {
        addresses.all.map { address in
            "\(address) dev \(core.devices[address.ifindex]?.name ?? "?")"
        }.joined(separator: "\n")
    }

    /// The filter table as `iptables -L -v` would count it: packets, bytes, the rule.
    public func showFilter() -> String {
        filter.allRules.map { rule in
            let packets = String(rule.packets), bytes = String(rule.bytes)
            return String(repeating: " ", count: max(0, 10 - packets.count)) + packets
                + String(repeating: " ", count: max(0, 12 - bytes.count)) + bytes + "  " + rule.description
        }.joined(separator: "\n")
    }
}
