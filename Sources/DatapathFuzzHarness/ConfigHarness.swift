import Datapath
import DatapathCore
import DatapathWire

/// The fuzz harness for the command language (issue #13): an input is configuration text for a
/// stack with two in-memory devices. A configuration applies whole or fails with an error that
/// names its line; when it fails, nothing changed — devices, addresses, routes, neighbours —
/// else the harness traps.
public enum ConfigHarness {
    public static func run(_ input: UnsafeRawBufferPointer) {
        guard let text = String(validating: input, as: UTF8.self) else { return }
        let stack = Stack(workers: 1, clock: VirtualClock())
        for name in ["eth0", "eth1"] {
            _ = try? stack.addDevice(MemoryDevice(name: name, macAddress: MACAddress(2, 0, 0, 0, 0, name == "eth0" ? 1 : 2)))
        }
        _ = try? stack.apply("addr add 198.18.1.1/24 dev eth0\nroute add 198.19.0.0/16 via 198.18.1.2")
        let before = state(stack)
        do {
            try stack.apply(text)
        } catch {
            switch error {
            case .syntax(let error):
                precondition(error.line >= 1, "a syntax error without a line")
                precondition(state(stack) == before, "a configuration with a syntax error changed the stack")
            case .apply(let error):
                precondition(error.line >= 1, "an error without a line")
                precondition(state(stack) == before, "a configuration that failed changed the stack: \(error)")
            }
        }
    }

    static func state(_ stack: Stack) -> [String] {
        [stack.showLinks(), stack.showRoutes(), stack.showAddresses(), stack.showNeighbours(), stack.showFDB(),
         stack.showFilter()]
    }
}
