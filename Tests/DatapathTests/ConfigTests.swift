import Testing
@_spi(Internals) import Datapath
import DatapathCore
import DatapathWire

@Suite struct ConfigParserTests {
    @Test func everyCommandParses() throws {
        let lines = try ConfigParser.parse("""
            # an L2 lab
            link add eth0 type afpacket dev veth-dut0
            link add bond0 type bond mode balance-xor xmit_hash_policy layer3+4
            link add br0 type bridge      # no STP
            link set eth1 master bond0

            link set eth2 down
            addr add 198.18.1.1/24 dev br0
            neigh add 198.18.2.2 lladdr 02:00:00:00:02:02 dev eth1 nud permanent
            bridge fdb add 02:00:00:00:00:07 dev eth3 master static
            link set eth3 \\
                master br0
            route add 198.19.0.0/16 via 198.18.2.2 dev eth1 metric 10 mtu 1400
            route add default via 198.18.1.254
            route add unreachable 198.19.99.0/24
            route del 198.19.0.0/16 metric 10
            link set eth1 mtu 1400
            """)
        #expect(lines.map(\.command) == [
            .addAFPacket(name: "eth0", interface: "veth-dut0"),
            .addBond(name: "bond0", mode: .balanceXOR, hashPolicy: .layer34),
            .addBridge(name: "br0"),
            .setMaster(device: "eth1", master: "bond0"),
            .setState(device: "eth2", up: false),
            .addAddress(address: ip("198.18.1.1"), prefixLength: 24, device: "br0"),
            .addNeighbour(address: ip("198.18.2.2"), linkAddress: MACAddress("02:00:00:00:02:02")!, device: "eth1"),
            .addFDBEntry(address: MACAddress("02:00:00:00:00:07")!, device: "eth3"),
            .setMaster(device: "eth3", master: "br0"),
            .addRoute(RouteSpec(prefix: IPv4Prefix("198.19.0.0/16")!, gateway: ip("198.18.2.2"), device: "eth1",
                                metric: 10, mtu: 1400)),
            .addRoute(RouteSpec(prefix: IPv4Prefix("0.0.0.0/0")!, gateway: ip("198.18.1.254"))),
            .addRoute(RouteSpec(prefix: IPv4Prefix("198.19.99.0/24")!, type: .unreachable)),
            .deleteRoute(prefix: IPv4Prefix("198.19.0.0/16")!, metric: 10),
            .setMTU(device: "eth1", mtu: 1400),
        ])
        #expect(lines.map(\.line) == [2, 3, 4, 5, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17])
    }

    /// The tokenizer reads bytes: CRLF line ends, quotes mid-word, multi-byte UTF-8 inside a
    /// quoted word and comments after a continuation all come out as the language says.
    @Test func wordsAreSplitByTheLanguagesRulesOnAnyText() throws {
        let lines = try ConfigParser.parse("link add br0 type bridge\r\nlink set br0 \\\r\n  up # on\r\nroute add 198.19.0.0/16 d\"e\"v br0\n")
        #expect(lines.map(\.command) == [
            .addBridge(name: "br0"),
            .setState(device: "br0", up: true),
            .addRoute(RouteSpec(prefix: IPv4Prefix("198.19.0.0/16")!, device: "br0")),
        ])
        #expect(lines.map(\.line) == [1, 2, 4])
        // A quoted word keeps its non-ASCII characters (and is refused as a name, whole).
        #expect(throws: ConfigError(line: 1, word: "brü ck", expected: "a new device name (1-15 letters, digits, '-', '_', '.')")) {
            try ConfigParser.parse("link add 'brü ck' type bridge")
        }
        #expect(try ConfigParser.parse("").isEmpty)
        #expect(try ConfigParser.parse("\n\n# only comments\n").isEmpty)
    }

    @Test(arguments: [
        ("link add eth0 typ bond", "line 1: expected 'type', got 'typ'"),
        ("link add bond0 type bond mode active", "line 1: expected one of 'active-backup', 'balance-rr', 'balance-xor', got 'active'"),
        ("link add bond0 type bond", "line 1: expected 'mode', got end of line"),
        ("link add bond0 type bond mode balance-xor xmit_hash_policy layer3",
         "line 1: expected one of 'layer2', 'layer3+4', got 'layer3'"),
        ("link set eth0", "line 1: expected one of 'master', 'up', 'down', 'mtu', got end of line"),
        ("link set eth0 mtu 67", "line 1: expected an MTU, got '67'"),
        ("link set eth0 up now", "line 1: expected end of line, got 'now'"),
        ("addr add 198.18.0.1 dev eth0", "line 1: expected an IPv4 address with prefix length (A.B.C.D/LEN), got '198.18.0.1'"),
        ("addr add 198.18.0.1/33 dev eth0", "line 1: expected an IPv4 address with prefix length (A.B.C.D/LEN), got '198.18.0.1/33'"),
        ("neigh add 198.18.0.2 lladdr 02:00:00:00:00 dev eth0", "line 1: expected a MAC address (xx:xx:xx:xx:xx:xx), got '02:00:00:00:00'"),
        ("neigh add 198.18.0.300 lladdr 02:00:00:00:00:01 dev eth0", "line 1: expected an IPv4 address, got '198.18.0.300'"),
        ("xfrm state add src 198.18.2.1", "line 1: expected one of 'link', 'addr', 'route', 'neigh', 'bridge', 'filter', got 'xfrm'"),
        ("route add 198.19.0.0/16", "line 1: expected 'via GATEWAY' or 'dev DEVICE', got end of line"),
        ("route add 198.19.0.0/16 via 198.18.2.2 dev eth1 metric -1", "line 1: expected a metric (0-4294967295), got '-1'"),
        ("route add 198.19.0.0/16 dev eth1 mtu 40", "line 1: expected an MTU (68-65535), got '40'"),
        ("route add blackhole 198.19.0.0/16 via 198.18.2.2", "line 1: expected 'metric' or end of line, got 'via'"),
        ("route add 198.19.0/16 dev eth1", "line 1: expected a destination prefix (A.B.C.D/LEN or 'default'), got '198.19.0/16'"),
        ("route del", "line 1: expected a destination prefix (A.B.C.D/LEN or 'default'), got end of line"),
        ("link add averyveryverylongname type bridge",
         "line 1: expected a new device name (1-15 letters, digits, '-', '_', '.'), got 'averyveryverylongname'"),
        ("bridge fdb add 02:00:00:00:00:01 port eth0", "line 1: expected 'dev', got 'port'"),
        ("\n# comment\n\nlink add br0 type bridge extra", "line 4: expected end of line, got 'extra'"),
        ("link add x type afpacket dev 'veth0", "line 1: expected a closing quote, got 'veth0'"),
    ])
    func badLinesNameTheLineTheWordAndWhatWasExpected(text: String, message: String) {
        #expect(throws: ConfigError.self) { try ConfigParser.parse(text) }
        do {
            _ = try ConfigParser.parse(text)
        } catch {
            #expect(error.description == message)
        }
    }
}

@Suite struct ConfigApplyTests {
    /// A stack with four in-memory devices eth0…eth3 registered through the API.
    func makeStack() throws -> (Stack, [MemoryDevice]) {
        let stack = Stack(workers: 1, clock: VirtualClock())
        var devices: [MemoryDevice] = []
        for i in 0..<4 {
            let device = MemoryDevice(name: "eth\(i)", macAddress: mac(UInt8(i + 1)))
            try stack.addDevice(device)
            devices.append(device)
        }
        return (stack, devices)
    }

    @Test func aConfigurationBuildsBondsBridgesAddressesNeighboursAndShowsThem() throws {
        let (stack, _) = try makeStack()
        try stack.apply("""
            link add bond0 type bond mode active-backup
            link set eth0 master bond0
            link set eth1 master bond0
            link add br0 type bridge
            link set eth2 master br0
            link set eth3 master br0
            link set eth3 down
            addr add 198.18.1.1/24 dev bond0
            neigh add 198.18.1.2 lladdr 02:00:00:00:01:02 dev bond0
            bridge fdb add 02:00:00:00:00:77 dev eth2
            """)
        let bond = try #require(stack.link(named: "bond0")?.device as? BondDevice)
        #expect(bond.slaves.map(\.device.name) == ["eth0", "eth1"])
        #expect(bond.activeSlave?.device.name == "eth0")
        #expect(stack.showLinks() == """
            1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN
                link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
            2: eth0: <SLAVE,BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo master bond0 state UP
                link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff
            3: eth1: <SLAVE,BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo master bond0 state UP
                link/ether 02:00:00:00:00:02 brd ff:ff:ff:ff:ff:ff
            4: eth2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo master br0 state UP
                link/ether 02:00:00:00:00:03 brd ff:ff:ff:ff:ff:ff
            5: eth3: <BROADCAST,MULTICAST> mtu 1500 qdisc pfifo master br0 state DOWN
                link/ether 02:00:00:00:00:04 brd ff:ff:ff:ff:ff:ff
            6: bond0: <MASTER,BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP
                link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff
                bond mode active-backup active_slave eth0 failovers 0
            7: br0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP
                link/ether \(stack.link(named: "br0")!.device.macAddress) brd ff:ff:ff:ff:ff:ff
                bridge ageing_time 300s
            """)
        let bridgeMAC = stack.link(named: "br0")!.device.macAddress
        #expect(stack.showFDB().split(separator: "\n").sorted() == [
            "02:00:00:00:00:03 dev eth2 master br0 permanent",
            "02:00:00:00:00:04 dev eth3 master br0 permanent",
            "02:00:00:00:00:77 dev eth2 master br0 static",
            "\(bridgeMAC) dev eth2 master br0 permanent",
        ])
        #expect(stack.showNeighbours() == "198.18.1.2 dev bond0 lladdr 02:00:00:00:01:02 PERMANENT")
        #expect(stack.showAddresses() == "198.18.1.1/24 dev bond0")
    }

    @Test func aConfigurationWithAnErrorAppliesNothing() throws {
        let (stack, _) = try makeStack()
        let before = stack.links.count
        #expect {
            try stack.apply("""
                link add br0 type bridge
                link set eth0 master br0
                addr add 198.18.1.1/24 dev br0
                link set eth9 master br0
                """)
        } throws: { error in
            guard case .apply(let error) = error as? ConfigurationError else { return false }
            return error.description
                == "line 4: 'eth9': no such device (add it with 'link add' first)"
        }
        #expect(stack.links.count == before)
        #expect(stack.link(named: "eth0")?.master == nil)
        #expect(stack.addresses.all.isEmpty)
        #expect(stack.core.rxHandler(of: stack.link(named: "eth0")!.device) == nil)
    }

    /// All or nothing also for what only a table's size refuses: the last line overflows the
    /// neighbour table, and the devices, addresses, routes and neighbours of the lines before it
    /// are not there afterwards.
    @Test func aConfigurationOverflowingATableAppliesNothing() throws {
        var parameters = NeighbourParameters.linuxDefaults
        parameters.maximumEntries = 3
        let stack = Stack(workers: 1, clock: VirtualClock(), neighbourParameters: parameters)
        try stack.addDevice(MemoryDevice(name: "eth0", macAddress: mac(1)))
        try stack.apply("neigh add 198.18.1.9 lladdr 02:00:00:00:00:09 dev eth0")
        let generation = stack.fib.generation
        var text = "link add br0 type bridge\nlink set eth0 master br0\naddr add 198.18.1.1/24 dev br0\n"
        text += (0..<50).map { "route add 198.19.\($0).0/24 via 198.18.1.2" }.joined(separator: "\n")
        // Re-adding 198.18.1.9 takes no room; the third new entry is one too many.
        text += "\nneigh add 198.18.1.9 lladdr 02:00:00:00:00:09 dev eth0"
        text += "\nneigh add 198.18.1.2 lladdr 02:00:00:00:00:02 dev br0"
        text += "\nneigh add 198.18.1.3 lladdr 02:00:00:00:00:03 dev br0"
        text += "\nneigh add 198.18.1.4 lladdr 02:00:00:00:00:04 dev br0"
        expectFailure(stack, text, "line 57: '198.18.1.4': neighbour table full")
        #expect(stack.link(named: "br0") == nil)
        #expect(stack.addresses.all.isEmpty)
        #expect(stack.fib.count == 0 && stack.fib.generation == generation)
        #expect(stack.neighbours.snapshot().map(\.address) == [ip("198.18.1.9")])
        try stack.apply(text.split(separator: "\n").dropLast().joined(separator: "\n"))
        #expect(stack.neighbours.snapshot().count == 3)
    }

    /// A configuration's routes are published once, together (not once per line): a table of
    /// 20 000 routes plus what an address brings costs one FIB generation, and the model the
    /// lines are checked against agrees with the FIB on deletes (without a metric: the best).
    @Test func aConfigurationPublishesItsRoutesOnce() throws {
        let (stack, _) = try makeStack()
        let generation = stack.fib.generation
        var lines = ["addr add 198.18.1.1/24 dev eth0"]
        for i in 0..<20_000 { lines.append("route add 10.\(i >> 8).\(i & 255).0/24 via 198.18.1.2") }
        lines += ["route add 198.19.0.0/16 via 198.18.1.3 metric 20", "route add 198.19.0.0/16 via 198.18.1.4 metric 10",
                  "route del 198.19.0.0/16", "route del 10.0.0.0/24"]
        try stack.apply(lines.joined(separator: "\n"))
        #expect(stack.fib.generation == generation + 1)
        #expect(stack.fib.count == 20_000 - 1 + 1 + 3)   // the routes, the remaining 198.19/16, the address's three
        let snapshot = stack.fib.snapshot
        #expect(snapshot.lookup(ip("198.19.5.5"))?.gateway == ip("198.18.1.3"))   // metric 10 went
        #expect(snapshot.lookup(ip("10.78.31.1"))?.gateway == ip("198.18.1.2"))
        #expect(snapshot.lookup(ip("10.0.0.1")) == nil)
        // A route the lines already deleted cannot be deleted again.
        expectFailure(stack, "route del 10.0.1.0/24\nroute del 10.0.1.0/24", "line 2: '10.0.1.0/24': no such route")
        #expect(stack.fib.count == 20_003)
    }

    @Test(arguments: [
        ("link add eth0 type bridge", "line 1: 'eth0': device already exists"),
        ("link set eth0 master eth1", "line 1: 'eth1': not a bond or a bridge"),
        ("link add b type bond mode balance-rr\nlink set eth0 master b\nlink set eth0 master b",
         "line 3: 'eth0': already has master b"),
        ("bridge fdb add 02:00:00:00:00:07 dev eth1",
         "line 1: 'eth1': not a bridge port (use 'link set eth1 master BRIDGE' first)"),
        ("link add br0 type bridge\nlink add br1 type bridge\nlink set br1 master br0",
         "line 3: 'br1': a bridge cannot be a bridge port"),
        ("neigh add 198.18.0.2 lladdr 01:00:5e:00:00:01 dev eth0", "line 1: '01:00:5e:00:00:01': not a unicast MAC"),
        ("addr add 224.0.0.1/4 dev eth0", "line 1: '224.0.0.1': not a unicast address"),
    ])
    func meaningErrorsNameTheLineAndTheWord(text: String, message: String) throws {
        let (stack, _) = try makeStack()
        expectFailure(stack, text, message)
    }

    /// Applies `text` expecting exactly `message`.
    func expectFailure(_ stack: Stack, _ text: String, _ message: String) {
        do {
            try stack.apply(text)
            Issue.record("applied: \(text)")
        } catch {
            #expect("\(error)" == message)
        }
    }

    /// Errors are values that say what and where, not strings to parse.
    @Test func refusalsAreTypedWithWhatAndWhere() throws {
        let (stack, _) = try makeStack()
        #expect(throws: StackError.noSuchDevice("eth9")) { try stack.setUp("eth9", true) }
        #expect(throws: StackError.mtuOutOfRange(device: "eth0", mtu: 9000, range: 68...1500)) {
            try stack.setMTU("eth0", 9000)
        }
        #expect(throws: StackError.gatewayNotConnected(ip("198.18.9.1"), device: nil)) {
            try stack.addRoute(RouteSpec(prefix: IPv4Prefix(address: ip("198.19.0.0"), length: 16)!,
                                         gateway: ip("198.18.9.1")))
        }
        try stack.apply("addr add 198.18.1.1/24 dev eth0")
        do {
            try stack.apply("route add 198.18.1.0/24 dev eth0")   // the connected route exists
            Issue.record("applied")
        } catch .apply(let error) {
            #expect(error.cause == .invalid(.routeExists(metric: 0)) && error.line == 1)
        }
        // A full neighbour table is found before anything changes, and named as the stack's error.
        var parameters = NeighbourParameters.linuxDefaults
        parameters.maximumEntries = 1
        let small = Stack(workers: 1, clock: VirtualClock(), neighbourParameters: parameters)
        try small.addDevice(MemoryDevice(name: "eth0", macAddress: mac(1)))
        try small.apply("neigh add 198.18.1.2 lladdr 02:00:00:00:00:02 dev eth0")
        do {
            try small.apply("neigh add 198.18.1.3 lladdr 02:00:00:00:00:03 dev eth0")
            Issue.record("applied")
        } catch .apply(let error) {
            #expect(error.cause == .stack(.neighbourTableFull))
            #expect(error.description == "line 1: '198.18.1.3': neighbour table full")
        }
    }

    @Test func anInterfaceThatCannotBeOpenedFailsTheWholeConfiguration() throws {
        let (stack, _) = try makeStack()
        do {
            try stack.apply("link add br0 type bridge\nlink add wan0 type afpacket dev veth9nosuch")
            Issue.record("applied")
        } catch .apply(let error) {
            #expect(error.line == 2)
            #expect(error.word == "veth9nosuch")
        }
        #expect(stack.link(named: "br0") == nil)
    }

    @Test func aBondTakingItsFirstSlavesAddressRebuildsItsNeighboursHeaders() throws {
        let stack = Stack(workers: 1, clock: VirtualClock())
        let (eth0, wire) = MemoryDevice.pair("eth0", mac(1), "wire", mac(2))
        try stack.addDevice(eth0)
        try stack.addDevice(wire)
        try stack.apply("""
            link add bond0 type bond mode active-backup
            neigh add 198.18.1.2 lladdr 02:00:00:00:01:02 dev bond0
            link set eth0 master bond0
            """)
        let bond = try #require(stack.bonds.first)
        let neighbour = try #require(stack.neighbours.lookup(ip("198.18.1.2"), ifindex: bond.ifindex))
        let pool = try PacketPool(capacity: 64)
        let worker = Worker(pool: pool, clock: stack.clock)
        var batch = PacketBatch()
        let skb = worker.cache.allocate()!
        skb.reserve(64)
        _ = skb.put(28)
        batch.append(skb)
        stack.neighbours.output(&batch, via: neighbour, worker: worker)
        _ = wire.receive(queue: 0, into: &batch, max: 8, worker: worker)
        #expect(batch.count == 1)
        #expect(batch.indices.map { Array(batch[$0].bytes[0..<12]) } == [[2, 0, 0, 0, 1, 2, 2, 0, 0, 0, 0, 1]])
        worker.cache.free(&batch)
        #expect(pool.inUseCount == 0)
    }

    @Test func addressesBringTheirRoutesAndRoutesResolveTheirGateways() throws {
        let (stack, _) = try makeStack()
        try stack.apply("""
            addr add 198.18.1.1/24 dev eth0
            addr add 198.18.2.1/30 dev eth1
            route add 198.19.0.0/16 via 198.18.2.2 metric 10 mtu 1400
            route add default via 198.18.1.254
            route add blackhole 198.19.99.0/24
            route add 198.20.0.0/15 dev eth2
            """)
        #expect(stack.showRoutes() == """
            default via 198.18.1.254 dev eth0
            198.18.1.0/24 dev eth0
            local 198.18.1.1 dev eth0
            broadcast 198.18.1.255 dev eth0
            198.18.2.0/30 dev eth1
            local 198.18.2.1 dev eth1
            broadcast 198.18.2.3 dev eth1
            198.19.0.0/16 via 198.18.2.2 dev eth1 metric 10 mtu 1400
            blackhole 198.19.99.0/24
            198.20.0.0/15 dev eth2
            """)
        let snapshot = stack.fib.snapshot
        #expect(snapshot.lookup(ip("198.19.7.7"))?.gateway == ip("198.18.2.2"))
        #expect(snapshot.lookup(ip("203.0.113.1"))?.ifindex == stack.link(named: "eth0")!.device.ifindex)
        #expect(snapshot.lookup(ip("198.18.1.1"))?.type == .local)
    }

    @Test(arguments: [
        ("route add 198.19.0.0/16 via 198.18.9.9",
         "line 1: '198.18.9.9': gateway not in a connected subnet (add the address first)"),
        ("addr add 198.18.1.1/24 dev eth0\nroute add 198.19.0.0/16 via 198.18.1.2 dev eth1",
         "line 2: '198.18.1.2': gateway not in a connected subnet of eth1 (add the address first)"),
        ("route add 198.19.0.0/16 dev eth9", "line 1: 'eth9': no such device (add it with 'link add' first)"),
        ("route add 198.19.0.0/16 dev eth1\nroute add 198.19.0.0/16 dev eth2", "line 2: '198.19.0.0/16': route exists (metric 0)"),
        ("route del 198.19.0.0/16", "line 1: '198.19.0.0/16': no such route"),
    ])
    func badRoutesNameTheLineAndTheWord(text: String, message: String) throws {
        let (stack, _) = try makeStack()
        expectFailure(stack, text, message)
        #expect(stack.fib.routes.isEmpty)
    }

    /// `route replace` replaces the route with that prefix and metric (or adds it); `route
    /// flush` leaves only what the addresses brought, and lines after it in the same
    /// configuration are checked against the flushed table; `addr del` takes its routes along
    /// (the subnet's only with the subnet's last address); `neigh del` removes the entry;
    /// deleting what is not there is an error naming it.
    @Test func routesReplaceAndFlushAddressesAndNeighboursDelete() throws {
        let (stack, _) = try makeStack()
        try stack.apply("""
            addr add 198.18.1.1/24 dev eth0
            addr add 198.18.1.5/24 dev eth0
            route add 198.19.0.0/16 via 198.18.1.2
            route add blackhole 198.20.0.0/16
            neigh add 198.18.1.2 lladdr 02:00:00:00:00:22 dev eth0
            """)
        let before = stack.fib.count
        try stack.apply("route replace 198.19.0.0/16 via 198.18.1.3\nroute replace 198.21.0.0/16 via 198.18.1.4")
        #expect(stack.fib.snapshot.lookup(ip("198.19.1.1"))?.gateway == ip("198.18.1.3"))
        #expect(stack.fib.snapshot.lookup(ip("198.21.1.1"))?.gateway == ip("198.18.1.4"))
        #expect(stack.fib.count == before + 1)

        try stack.apply("route flush\nroute add 198.19.0.0/16 via 198.18.1.2")
        let snapshot = stack.fib.snapshot
        #expect(snapshot.lookup(ip("198.20.1.1")) == nil && snapshot.lookup(ip("198.21.1.1")) == nil)
        #expect(snapshot.lookup(ip("198.19.1.1"))?.gateway == ip("198.18.1.2"))
        #expect(snapshot.lookup(ip("198.18.1.1"))?.type == .local && snapshot.lookup(ip("198.18.1.255"))?.type == .broadcast)
        #expect(snapshot.lookup(ip("198.18.1.9"))?.type == .unicast)   // the connected route stayed

        try stack.apply("addr del 198.18.1.1/24 dev eth0")
        #expect(stack.addresses.all.map(\.address) == [ip("198.18.1.5")])
        #expect(stack.fib.snapshot.lookup(ip("198.18.1.1"))?.type == .unicast)   // no longer local; the subnet stays
        try stack.apply("addr del 198.18.1.5/24 dev eth0")
        #expect(stack.fib.snapshot.lookup(ip("198.18.1.9")) == nil && stack.fib.snapshot.lookup(ip("198.18.1.255")) == nil)
        expectFailure(stack, "addr del 198.18.1.5/24 dev eth0", "line 1: '198.18.1.5': no such address on eth0")

        // What the model keeps over a flush is what the flush keeps: a metric-100 connected-
        // looking route goes, so adding it again in the same batch is no conflict; and
        // `route replace` of one of our own addresses leaves its local route alone.
        try stack.apply("addr add 198.18.3.1/24 dev eth1\nroute add 198.18.3.0/24 dev eth1 metric 100")
        try stack.apply("route flush\nroute add 198.18.3.0/24 dev eth1 metric 100")
        try stack.apply("route replace 198.18.3.1/32 via 198.18.3.2")
        #expect(stack.fib.snapshot.lookup(ip("198.18.3.1"))?.type == .local)

        // filter del HOOK N (iptables -D CHAIN N): by number from 1, checked across the lines.
        try stack.apply("filter add input proto udp dport 9 drop\nfilter add input proto tcp dport 22 drop")
        let second = stack.filter.allRules.last?.description
        try stack.apply("filter del input 1")
        #expect(stack.filter.allRules.map(\.description) == [second])
        expectFailure(stack, "filter del input 1\nfilter del input 1", "line 2: '1': no rule 1 in INPUT (it has 0)")
        #expect(stack.filter.count(.localIn) == 1)

        #expect(stack.neighbours.snapshot().map(\.address) == [ip("198.18.1.2")])
        try stack.apply("neigh del 198.18.1.2 dev eth0")
        #expect(stack.neighbours.snapshot().isEmpty)
        expectFailure(stack, "neigh del 198.18.1.2 dev eth0", "line 1: '198.18.1.2': no such neighbour on eth0")
    }
}
