/// Splits configuration text into lines of words: `#` starts a comment, a trailing `\` joins
/// the next line, and '…' or "…" quote a word with spaces. Each line keeps the number of the
/// line it started on.
///
/// Works on the text's UTF-8 bytes: every character the language gives a meaning (newline,
/// blanks, `#`, quotes, `\`) is ASCII, and no byte of a multi-byte UTF-8 sequence is, so the
/// words come out the same as splitting by characters would give — at a fraction of the cost
/// (a full routing table is a million lines). A line ends at `\n` or `\r\n`.
struct ConfigTokenizer {
    struct Line {
        let number: Int
        let words: [String]
    }

    static func lines(_ text: String) throws(ConfigError) -> [Line] {
        var text = text
        // `withUTF8` rethrows untyped errors: the closure hands its error out instead.
        let outcome = text.withUTF8 { (bytes: UnsafeBufferPointer<UInt8>) -> Result<[Line], ConfigError> in
            var result: [Line] = []
            var pending: [String] = []
            var startLine = 0
            var number = 0
            var scratch: [UInt8] = []
            var start = 0
            while start <= bytes.count {
                var end = start
                while unsafe end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                number += 1
                if pending.isEmpty { startLine = number }
                let continued: Bool
                do throws(ConfigError) {
                    // A CRLF line end is a line end (so a `\` before it continues the line).
                    let last = unsafe end > start && bytes[end - 1] == UInt8(ascii: "\r") ? end - 1 : end
                    continued = unsafe try split(UnsafeBufferPointer(rebasing: bytes[start..<last]), line: number,
                                          into: &pending, scratch: &scratch)
                } catch { return .failure(error) }
                if !continued && !pending.isEmpty {
                    result.append(Line(number: startLine, words: pending))
                    pending = []
                }
                start = end + 1
            }
            if !pending.isEmpty { result.append(Line(number: startLine, words: pending)) }
            return .success(result)
        }
        return try outcome.get()
    }

    /// Appends the words of one physical line to `words`; returns whether it ends with a
    /// continuation. `scratch` is a word's bytes while it is being read (reused across lines).
    static func split(_ line: UnsafeBufferPointer<UInt8>, line number: Int, into words: inout [String],
                      scratch current: inout [UInt8]) throws(ConfigError) -> Bool {
        current.removeAll(keepingCapacity: true)
        var inWord = false
        var quote: UInt8?
        func word() -> String { String(decoding: current, as: UTF8.self) }
        for unsafe byte in unsafe line {
            if let open = quote {
                if byte == open { quote = nil } else { current.append(byte) }
                continue
            }
            switch byte {
            case UInt8(ascii: "#"):
                if inWord { words.append(word()) }
                return false
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                quote = byte
                inWord = true
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                if inWord { words.append(word()) }
                current.removeAll(keepingCapacity: true)
                inWord = false
            default:
                current.append(byte)
                inWord = true
            }
        }
        if quote != nil { throw ConfigError(line: number, word: word(), expected: "a closing quote") }
        guard inWord else { return false }
        if current == [UInt8(ascii: "\\")] { return true }
        if current.last == UInt8(ascii: "\\") {
            current.removeLast()
            words.append(word())
            return true
        }
        words.append(word())
        return false
    }
}
