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
    public let reason: String

    public var description: String { "line \(line): '\(word)': \(reason)" }
}
