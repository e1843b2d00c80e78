import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `datapath ctl SOCKET COMMAND…` / `datapath ctl SOCKET --batch FILE`: sends commands to a
/// `forward --control SOCKET` and prints the answers — what it shows on stdout, an error on
/// stderr. Exit 0 when every request was `ok`, 1 when one failed, 2 when the socket cannot be
/// reached.
struct CtlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Send commands to a running `datapath forward --control SOCKET`.",
        discussion: """
            Examples:
              datapath ctl /run/dp.sock route add 198.19.0.0/16 via 198.18.2.2
              datapath ctl /run/dp.sock --batch routes.conf      # all or nothing, one answer
              datapath ctl /run/dp.sock route show
            """)

    @Argument(help: "The control socket.") var socketPath: String
    @Argument(parsing: .captureForPassthrough, help: "One command, as its words, or --batch FILE (commands applied as one batch, all or nothing).")
    var words: [String] = []

    /// The batch file of `--batch FILE`.
    var batch: String? { words.first == "--batch" && words.count == 2 ? words[1] : nil }
    var command: [String] { batch == nil ? words : [] }

    func validate() throws {
        if words.isEmpty { throw ValidationError("give a COMMAND or --batch FILE") }
        if words.first == "--batch" && words.count != 2 { throw ValidationError("--batch takes one FILE") }
    }

    func run() throws {
        var request: String
        var answers = 1
        if let batch {
            guard let text = try? String(contentsOfFile: batch, encoding: .utf8) else { throw CLIError("cannot read \(batch)") }
            request = "batch\n" + text + (text.hasSuffix("\n") ? "" : "\n") + "end\n"
        } else {
            request = command.joined(separator: " ") + "\n"
            answers = 1
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CLIError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw CLIError("socket path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw CLIError("cannot reach \(socketPath): \(String(cString: strerror(errno)))") }
        Array(request.utf8).withUnsafeBytes { writeAll(fd, $0) }
        var failed = false
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while answers > 0 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { throw CLIError("\(socketPath) closed the connection") }
            pending += buffer[0..<n]
            while answers > 0, let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if line == "ok" {
                    answers -= 1
                } else if line.hasPrefix("error: ") {
                    printError("datapath: \(line)")
                    failed = true
                    answers -= 1
                } else {
                    say(line)
                }
            }
        }
        if failed { throw ExitCode(1) }
    }
}
