import DatapathWire

/// Parses the command language (DESIGN.md §7) into commands, all or nothing: the first bad
/// line throws a `ConfigError` with its number, the word it stopped at and what was expected.
public enum ConfigParser {
    public static func parse(_ text: String) throws(ConfigError) -> [ConfigLine] {
        try ConfigTokenizer.lines(text).map { line throws(ConfigError) in
            var cursor = Cursor(words: line.words, line: line.number)
            let command = try parseCommand(&cursor)
            try cursor.expectEnd()
            return ConfigLine(line: line.number, command: command, words: line.words)
        }
    }

    static func parseCommand(_ c: inout Cursor) throws(ConfigError) -> ConfigCommand {
        switch try c.keyword(["link", "addr", "route", "neigh", "bridge", "filter"]) {
        case "link":
            switch try c.keyword(["add", "set"]) {
            case "add": return try parseLinkAdd(&c)
            default: return try parseLinkSet(&c)
            }
        case "addr":
            let verb = try c.keyword(["add", "del"])
            let (address, length) = try c.prefix()
            try c.expect("dev")
            let device = try c.name("a device name")
            return verb == "add" ? .addAddress(address: address, prefixLength: length, device: device)
                : .deleteAddress(address: address, prefixLength: length, device: device)
        case "route":
            return try parseRoute(&c)
        case "filter":
            switch try c.keyword(["add", "del", "list"]) {
            case "list": return .listFilter
            case "del":
                let hooks: [String: NetfilterHook] = ["input": .localIn, "forward": .forward, "output": .localOut]
                let hook = hooks[try c.keyword(["input", "forward", "output"])]!
                return .deleteFilterRule(hook: hook, number: try c.number("a rule number (from 1)", in: 1...1_000_000))
            default: return try parseFilterRule(&c)
            }
        case "neigh":
            if try c.keyword(["add", "del"]) == "del" {
                let address = try c.address()
                try c.expect("dev")
                return .deleteNeighbour(address: address, device: try c.name("a device name"))
            }
            let address = try c.address()
            try c.expect("lladdr")
            let linkAddress = try c.mac()
            try c.expect("dev")
            let device = try c.name("a device name")
            if c.peek == "nud" {
                c.advance()
                try c.expect("permanent")
            }
            return .addNeighbour(address: address, linkAddress: linkAddress, device: device)
        default:
            try c.expect("fdb")
            try c.expect("add")
            let address = try c.mac()
            try c.expect("dev")
            let device = try c.name("a device name")
            while let word = c.peek, word == "master" || word == "static" { c.advance() }
            return .addFDBEntry(address: address, device: device)
        }
    }

    static func parseLinkAdd(_ c: inout Cursor) throws(ConfigError) -> ConfigCommand {
        let name = try c.name("a new device name")
        try c.expect("type")
        switch try c.keyword(["afpacket", "bond", "bridge"]) {
        case "afpacket":
            try c.expect("dev")
            return .addAFPacket(name: name, interface: try c.name("a kernel interface name"))
        case "bond":
            try c.expect("mode")
            let modeWord = try c.keyword(BondMode.allCases.map(\.rawValue))
            var policy = XmitHashPolicy.layer2
            if c.peek == "xmit_hash_policy" {
                c.advance()
                policy = XmitHashPolicy(rawValue: try c.keyword(XmitHashPolicy.allCases.map(\.rawValue)))!
            }
            return .addBond(name: name, mode: BondMode(rawValue: modeWord)!, hashPolicy: policy)
        default:
            return .addBridge(name: name)
        }
    }

    static func parseRoute(_ c: inout Cursor) throws(ConfigError) -> ConfigCommand {
        let verb = try c.keyword(["add", "del", "replace", "flush"])
        if verb == "flush" { return .flushRoutes }
        if verb == "del" {
            let prefix = try c.routePrefix()
            var metric: UInt32?
            if c.peek == "metric" {
                c.advance()
                metric = UInt32(try c.number("a metric (0-4294967295)", in: 0...Int(UInt32.max)))
            }
            return .deleteRoute(prefix: prefix, metric: metric)
        }
        var spec = RouteSpec(prefix: IPv4Prefix(address: .zero, length: 0)!)
        if let word = c.peek, let type = ["blackhole": RouteType.blackhole, "unreachable": .unreachable,
                                          "prohibit": .prohibit][word] {
            c.advance()
            spec.type = type
        }
        spec.prefix = try c.routePrefix()
        while let word = c.peek {
            switch word {
            case "via" where spec.type == .unicast && spec.gateway == nil && spec.nexthops.isEmpty:
                c.advance()
                spec.gateway = try c.address()
            case "dev" where spec.type == .unicast && spec.device == nil && spec.nexthops.isEmpty:
                c.advance()
                spec.device = try c.name("a device name")
            case "metric":
                c.advance()
                spec.metric = UInt32(try c.number("a metric (0-4294967295)", in: 0...Int(UInt32.max)))
            case "mtu" where spec.type == .unicast:
                c.advance()
                spec.mtu = try c.number("an MTU (68-65535)", in: 68...65535)
            case "nexthop" where spec.type == .unicast && spec.gateway == nil && spec.device == nil:
                // `nexthop [via G] [dev D] [weight W]`, as iproute2 takes them; the next
                // `nexthop` (or the end of the line) ends one.
                c.advance()
                var hop = NexthopSpec()
                var seen: Set<String> = []
                while let word = c.peek, ["via", "dev", "weight"].contains(word), !seen.contains(word) {
                    seen.insert(word)
                    c.advance()
                    switch word {
                    case "via": hop.gateway = try c.address()
                    case "dev": hop.device = try c.name("a device name")
                    default: hop.weight = try c.number("a weight (1-256)", in: 1...256)
                    }
                }
                if hop.gateway == nil && hop.device == nil { throw c.error("'via GATEWAY' or 'dev DEVICE'") }
                spec.nexthops.append(hop)
            default:
                if !spec.nexthops.isEmpty && ["via", "dev", "weight"].contains(c.peek ?? "") {
                    throw c.error("'nexthop', 'metric', 'mtu' or end of line (one 'via', 'dev' and 'weight' per next hop)")
                }
                throw c.error(spec.type != .unicast ? "'metric' or end of line"
                              : spec.nexthops.isEmpty ? "one of 'via', 'dev', 'metric', 'mtu', 'nexthop'"
                              : "'nexthop', 'metric', 'mtu' or end of line")
            }
        }
        // One next hop is a plain route, as Linux makes it.
        if spec.nexthops.count == 1 {
            spec.gateway = spec.nexthops[0].gateway
            spec.device = spec.nexthops[0].device
            spec.nexthops = []
        }
        if spec.type == .unicast && spec.gateway == nil && spec.device == nil && spec.nexthops.isEmpty {
            throw c.error("'via GATEWAY' or 'dev DEVICE'")
        }
        return verb == "replace" ? .replaceRoute(spec) : .addRoute(spec)
    }

    static func parseFilterRule(_ c: inout Cursor) throws(ConfigError) -> ConfigCommand {
        let hooks: [String: NetfilterHook] = ["input": .localIn, "forward": .forward, "output": .localOut]
        let hook = hooks[try c.keyword(["input", "forward", "output"])]!
        var spec = FilterRuleSpec(hook: hook, verdict: .accept)
        var seen: Set<String> = []
        let matches = ["iif", "oif", "src", "dst", "proto", "sport", "dport", "icmp-type", "fragment"]
        let verdicts = ["accept", "drop", "reject"]
        while true {
            let word = try c.keyword(matches.filter { !seen.contains($0) } + verdicts)
            seen.insert(word)
            switch word {
            case "iif":
                guard hook != .localOut else { throw c.error("a match other than 'iif' on the output hook", back: 1) }
                spec.inputDevice = try c.name("a device name")
            case "oif":
                guard hook != .localIn else { throw c.error("a match other than 'oif' on the input hook", back: 1) }
                spec.outputDevice = try c.name("a device name")
            case "src": spec.source = try c.routePrefix()
            case "dst": spec.destination = try c.routePrefix()
            case "proto":
                let names: [String: IPProtocol] = ["icmp": .icmp, "tcp": .tcp, "udp": .udp, "sctp": .sctp]
                if let word = c.peek, let number = names[word] {
                    c.advance()
                    spec.ipProtocol = number
                } else {
                    spec.ipProtocol = IPProtocol(rawValue: UInt8(try c.number("a protocol (tcp, udp, icmp, sctp or 0-255)",
                                                                              in: 0...255)))
                }
            case "sport", "dport":
                guard let number = spec.ipProtocol, [IPProtocol.tcp, .udp, .sctp].contains(number) else {
                    throw c.error("'proto tcp', 'proto udp' or 'proto sctp' before '\(word)'", back: 1)
                }
                let range = try c.portRange()
                if word == "sport" { spec.sourcePorts = range } else { spec.destinationPorts = range }
            case "icmp-type":
                guard spec.ipProtocol == .icmp else { throw c.error("'proto icmp' before 'icmp-type'", back: 1) }
                let names: [String: ICMPType] = ["echo-reply": .echoReply, "destination-unreachable": .destinationUnreachable,
                                                 "echo-request": .echoRequest, "time-exceeded": .timeExceeded,
                                                 "parameter-problem": .parameterProblem]
                if let word = c.peek, let type = names[word] {
                    c.advance()
                    spec.icmpType = type
                } else {
                    spec.icmpType = ICMPType(rawValue: UInt8(try c.number("an ICMP type (echo-request, echo-reply, destination-unreachable, time-exceeded, parameter-problem or 0-255)", in: 0...255)))
                }
            case "fragment": spec.laterFragment = true
            case "accept": spec.verdict = .accept; return .addFilterRule(spec)
            case "drop": spec.verdict = .drop; return .addFilterRule(spec)
            default:
                var code = ICMPCode.DestinationUnreachable.port
                if c.peek == "with" {
                    c.advance()
                    let name = try c.keyword(FilterVerdict.rejectNames.map(\.0))
                    code = FilterVerdict.rejectNames.first { $0.0 == name }!.1
                }
                spec.verdict = .reject(code: code)
                return .addFilterRule(spec)
            }
        }
    }

    static func parseLinkSet(_ c: inout Cursor) throws(ConfigError) -> ConfigCommand {
        let device = try c.name("a device name")
        switch try c.keyword(["master", "up", "down", "mtu"]) {
        case "master": return .setMaster(device: device, master: try c.name("a bond or bridge name"))
        case "up": return .setState(device: device, up: true)
        case "mtu": return .setMTU(device: device, mtu: try c.number("an MTU", in: 68...65535))
        default: return .setState(device: device, up: false)
        }
    }

    /// Reads words left to right, throwing at the first one that is not what the grammar wants.
    struct Cursor {
        let words: [String]
        let line: Int
        var index = 0

        var peek: String? { index < words.count ? words[index] : nil }
        mutating func advance() { index += 1 }

        func error(_ expected: String) -> ConfigError { ConfigError(line: line, word: peek, expected: expected) }

        /// An error about the word `back` words before the current one.
        func error(_ expected: String, back: Int) -> ConfigError {
            ConfigError(line: line, word: index - back < words.count ? words[index - back] : nil, expected: expected)
        }

        /// `N` or `N-M`, ports 0-65535.
        mutating func portRange() throws(ConfigError) -> ClosedRange<UInt16> {
            guard let word = peek else { throw error("a port or port range (N or N-M)") }
            let parts = word.split(separator: "-", omittingEmptySubsequences: false).map { UInt16($0) }
            guard (1...2).contains(parts.count), let low = parts.first!, let high = parts.last!, low <= high else {
                throw error("a port or port range (N or N-M)")
            }
            advance()
            return low...high
        }

        mutating func expect(_ word: String) throws(ConfigError) {
            guard peek == word else { throw error("'\(word)'") }
            advance()
        }

        mutating func keyword(_ choices: [String]) throws(ConfigError) -> String {
            guard let word = peek, choices.contains(word) else {
                throw error(choices.count == 1 ? "'\(choices[0])'" : "one of " + choices.map { "'\($0)'" }.joined(separator: ", "))
            }
            advance()
            return word
        }

        /// A device name: 1–15 characters (IFNAMSIZ), letters, digits, `-`, `_`, `.`.
        mutating func name(_ what: String) throws(ConfigError) -> String {
            guard let word = peek, (1...15).contains(word.utf8.count),
                  word.unicodeScalars.allSatisfy({ $0.properties.isASCIIHexDigit || ("a"..."z").contains($0)
                      || ("A"..."Z").contains($0) || "-_.".unicodeScalars.contains($0) }),
                  !["type", "dev", "master", "up", "down", "lladdr"].contains(word) else {
                throw error("\(what) (1-15 letters, digits, '-', '_', '.')")
            }
            advance()
            return word
        }

        mutating func address() throws(ConfigError) -> IPv4Address {
            guard let word = peek, let address = IPv4Address(word) else { throw error("an IPv4 address") }
            advance()
            return address
        }

        mutating func prefix() throws(ConfigError) -> (IPv4Address, Int) {
            guard let word = peek else { throw error("an IPv4 address with prefix length (A.B.C.D/LEN)") }
            let parts = word.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let address = IPv4Address(String(parts[0])), let length = Int(parts[1]),
                  (0...32).contains(length) else {
                throw error("an IPv4 address with prefix length (A.B.C.D/LEN)")
            }
            advance()
            return (address, length)
        }

        /// A prefix, `default` (0.0.0.0/0), or a bare address (/32), as `ip route` takes them.
        mutating func routePrefix() throws(ConfigError) -> IPv4Prefix {
            guard let word = peek else { throw error("a destination prefix (A.B.C.D/LEN or 'default')") }
            let prefix = word == "default" ? IPv4Prefix(address: .zero, length: 0) : IPv4Prefix(word)
            guard let prefix else {
                throw error("a destination prefix (A.B.C.D/LEN or 'default')")
            }
            advance()
            return prefix
        }

        mutating func number(_ what: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
            guard let word = peek, let value = Int(word), range.contains(value) else { throw error(what) }
            advance()
            return value
        }

        mutating func mac() throws(ConfigError) -> MACAddress {
            guard let word = peek, let address = MACAddress(word) else { throw error("a MAC address (xx:xx:xx:xx:xx:xx)") }
            advance()
            return address
        }

        func expectEnd() throws(ConfigError) {
            if peek != nil { throw error("end of line") }
        }
    }
}
