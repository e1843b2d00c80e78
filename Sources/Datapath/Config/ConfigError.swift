/// A configuration line that cannot be parsed or applied: its number, the word it stopped at
/// (nil at the end of the line), and what was expected there.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public let line: Int
    public let word: String?
    public let expected: String

    public init(line: Int, word: String?, expected: String) {
        self.line = line
        self.word = word
        self.expected = expected
    }

    /// `line 3: expected 'type', got 'typ'`, or `… got end of line`.
    public var description: String {
        "line \(line): expected \(expected), got \(word.map { "'\($0)'" } ?? "end of line")"
    }
}

/// A failure applying a well-formed line: `line 5: 'eth9': no such device`.
public struct ConfigApplyError: Error, CustomStringConvertible, Sendable, Equatable {
    public let line: Int
    public let word: String
    public let cause: Cause

    /// Why the line cannot be applied.
    public enum Cause: Sendable, Equatable, CustomStringConvertible {
        /// The configuration contradicts itself or what exists (checked before anything changes).
        case invalid(Invalidity)
        /// AF_PACKET cannot open the interface (the error's own words).
        case cannotOpen(interface: String, reason: String)
        /// The stack refused the command.
        case stack(StackError)

        public var description: String {
            switch self {
            case .invalid(let reason): reason.description
            case .cannotOpen(_, let reason): reason
            case .stack(let error): error.description
            }
        }
    }

    /// What validation found wrong with a line (the word it names is the error's `word`).
    public enum Invalidity: Sendable, Equatable, CustomStringConvertible {
        /// The device named does not exist.
        case noSuchDevice
        /// A link command (add, master) while workers run: the device registry is fixed.
        case linksFixedWhileRunning
        case deviceExists
        case ownMaster
        /// The device is enslaved to `master` already.
        case alreadyHasMaster(String)
        /// The master named is neither a bond nor a bridge.
        case notAMaster
        /// A bond's slave must be a plain device.
        case notAPlainDevice
        case bridgeAsPort
        case mtuTooLarge(device: String, limit: Int)
        case notUnicastAddress
        case notUnicastMAC
        /// A gateway outside every connected subnet (of `device`, when the route names one).
        case gatewayNotConnected(device: String?)
        case routeExists(metric: UInt32)
        case noSuchRoute
        case noSuchAddress(device: String)
        case noSuchNeighbour(device: String)
        case noSuchFilterRule(number: Int, hook: NetfilterHook, count: Int)
        case notABridgePort(String)

        public var description: String {
            switch self {
            case .noSuchDevice: "no such device (add it with 'link add' first)"
            case .linksFixedWhileRunning: "devices cannot be added or enslaved while the stack runs"
            case .deviceExists: "device already exists"
            case .ownMaster: "a device cannot be its own master"
            case .alreadyHasMaster(let master): "already has master \(master)"
            case .notAMaster: "not a bond or a bridge"
            case .notAPlainDevice: "only plain devices can be bond slaves"
            case .bridgeAsPort: "a bridge cannot be a bridge port"
            case .mtuTooLarge(let device, let limit): "larger than \(device) can carry (\(limit))"
            case .notUnicastAddress: "not a unicast address"
            case .notUnicastMAC: "not a unicast MAC"
            case .gatewayNotConnected(let device):
                "gateway not in a connected subnet\(device.map { " of \($0)" } ?? "") (add the address first)"
            case .routeExists(let metric): "route exists (metric \(metric))"
            case .noSuchRoute: "no such route"
            case .noSuchAddress(let device): "no such address on \(device)"
            case .noSuchNeighbour(let device): "no such neighbour on \(device)"
            case .noSuchFilterRule(let number, let hook, let count): "no rule \(number) in \(hook) (it has \(count))"
            case .notABridgePort(let device): "not a bridge port (use 'link set \(device) master BRIDGE' first)"
            }
        }
    }

    public init(line: Int, word: String, cause: Cause) {
        self.line = line
        self.word = word
        self.cause = cause
    }

    public var reason: String { cause.description }

    public var description: String { "line \(line): '\(word)': \(reason)" }
}

/// Why `Stack.apply` applied nothing: a line that does not parse, or one that cannot be
/// applied. Its description is the inner error's (`line 3: expected 'type', got 'typ'`).
public enum ConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    case syntax(ConfigError)
    case apply(ConfigApplyError)

    /// The configuration line at fault (1-based).
    public var line: Int {
        switch self {
        case .syntax(let error): error.line
        case .apply(let error): error.line
        }
    }

    public var description: String {
        switch self {
        case .syntax(let error): error.description
        case .apply(let error): error.description
        }
    }
}
