import DatapathCore

#if canImport(Glibc)
import Glibc
#endif

/// `protocol-counter IF [SECONDS]`: opens a device, receives batches, counts them by protocol.
@main
struct ProtocolCounterMain {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2 else {
            printError("usage: protocol-counter INTERFACE [SECONDS]")
            exit(2)
        }
        let seconds = arguments.count > 2 ? Double(arguments[2]) ?? 5 : 5
        do {
            let counts = try countFrames(interface: arguments[1], seconds: seconds)
            print(counts.summary)
        } catch {
            printError("protocol-counter: \(error)")
            exit(2)
        }
    }

    /// Receives on `interface` for `seconds` and returns the counts.
    static func countFrames(interface: String, seconds: Double) throws -> ProtocolCounts {
        var configuration = AFPacketDevice.Configuration()
        configuration.transmit = false
        let device = try AFPacketDevice(interface: interface, configuration: configuration)
        let pool = try PacketPool(capacity: 2048)
        let worker = Worker(pool: pool)
        var counts = ProtocolCounts()
        var batch = PacketBatch()
        print("protocol-counter: counting on \(interface)")
        fflush(nil)
        let end = worker.clock.now() + UInt64(seconds * 1e9)
        while worker.clock.now() < end {
            if device.receive(queue: 0, into: &batch, max: PacketBatch.maximumCount, worker: worker) == 0 {
                usleep(1000)
                continue
            }
            counts.count(batch)
            worker.cache.free(&batch)
        }
        return counts
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}
