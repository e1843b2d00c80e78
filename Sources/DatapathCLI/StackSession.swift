import Datapath
import DatapathCore
import Foundation

/// The configuration text of `--config` files (in order) followed by single commands.
func loadConfiguration(files: [String], commands: [String]) throws -> String {
    var text = ""
    for file in files {
        guard let contents = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw CLIError("cannot read configuration \(file)")
        }
        text += contents + "\n"
    }
    return text + commands.joined(separator: "\n")
}

/// A stack built from a configuration and running on its own workers, for the commands that
/// are endpoints rather than forwarders (`nc`, `ping`): their sockets need started workers.
/// Everything it says goes to stderr — stdout is the endpoint's data.
final class StackSession {
    let stack: Stack
    let group: WorkerGroup

    init(configuration text: String, workers: Int = 1) throws {
        stack = Stack(workers: workers, logger: cliLogger)
        do { try stack.apply(text) } catch { throw CLIError(error) }
        for case let device as AFPacketDevice in stack.links.map(\.device) {
            if let error = device.kernelReceiveError { printError("warning: \(error)") }
        }
        group = WorkerGroup(core: stack.core, pools: try PacketPool.perNode(capacity: 8192 * workers), count: workers)
        group.pollAllQueues(of: stack.receivingDevices)
        stack.start(on: group)
        group.start()
    }

    func stop() { group.stop() }
}
