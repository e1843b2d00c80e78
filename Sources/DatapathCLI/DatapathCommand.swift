import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `datapath`: the swift-datapath command-line tool.
@main
struct DatapathCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datapath",
        abstract: "A user-space IPv4 datapath on AF_PACKET rings.",
        subcommands: [CaptureCommand.self, GenCommand.self, XConnectCommand.self, ForwardCommand.self, NCCommand.self,
                      PingCommand.self, CtlCommand.self])

    /// Parses and runs; every failure is one line on stderr and exit code 2 (help exits 0).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as CLIError {
            fail(error.description)
        } catch let error as ExitCode {
            Glibc.exit(error.rawValue)
        } catch {
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            fail(message(for: error))
        }
    }

    static func fail(_ message: String) -> Never {
        let line = message.split(separator: "\n").first.map(String.init) ?? message
        printError("datapath: error: \(line)")
        Glibc.exit(2)
    }
}

/// A runtime failure the user can act on, printed as one line.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
    init(_ error: any Error) { self.description = String(describing: error) }
}
