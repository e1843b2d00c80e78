/// Splits configuration text into lines of words: `#` starts a comment, a trailing `\` joins
/// the next line, and '…' or "…" quote a word with spaces. Each line keeps the number of the
/// line it started on.
struct ConfigTokenizer {
    struct Line {
        let number: Int
        let words: [String]
    }

    static func lines(_ text: String) throws(ConfigError) -> [Line] {
        var result: [Line] = []
        var pending: [String] = []
        var startLine = 0
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            if pending.isEmpty { startLine = number }
            var (words, continued) = try split(String(raw), line: number)
            pending += words
            if continued { continue }
            words = pending
            pending = []
            if !words.isEmpty { result.append(Line(number: startLine, words: words)) }
        }
        if !pending.isEmpty { result.append(Line(number: startLine, words: pending)) }
        return result
    }

    /// The words of one physical line, and whether it ends with a continuation.
    static func split(_ line: String, line number: Int) throws(ConfigError) -> ([String], Bool) {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var continued = false
        for character in line {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
                continue
            }
            switch character {
            case "#":
                if inWord { words.append(current) }
                return (words, false)
            case "'", "\"":
                quote = character
                inWord = true
            case " ", "\t", "\r":
                if inWord { words.append(current) }
                current = ""
                inWord = false
            default:
                current.append(character)
                inWord = true
            }
        }
        if quote != nil { throw ConfigError(line: number, word: current, expected: "a closing quote") }
        if inWord {
            if current == "\\" { continued = true } else if current.hasSuffix("\\") {
                current.removeLast()
                words.append(current)
                continued = true
            } else { words.append(current) }
        }
        return (words, continued)
    }
}
