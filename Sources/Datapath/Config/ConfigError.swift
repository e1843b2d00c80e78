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
        case invalid(String)
        /// AF_PACKET cannot open the interface (the error's own words).
        case cannotOpen(interface: String, reason: String)
        /// The stack refused the command.
        case stack(StackError)

        public var description: String {
            switch self {
            case .invalid(let reason): reason
            case .cannotOpen(_, let reason): reason
            case .stack(let error): error.description
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
