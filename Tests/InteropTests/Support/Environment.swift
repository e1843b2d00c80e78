import Foundation

/// Whether this machine can run the namespace tests, and whether it must.
enum NetnsEnvironment {
    /// CI sets DATAPATH_REQUIRE_NETNS=1: then a missing capability fails the test, never skips it.
    static let required = ProcessInfo.processInfo.environment["DATAPATH_REQUIRE_NETNS"] == "1"

    /// Nil when root and `ip netns` work; else why not.
    static let unavailableReason: String? = {
        if getuid() != 0 { return "needs root (network namespaces and AF_PACKET)" }
        let name = "dpcheck\(getpid())"
        guard (try? run("/usr/sbin/ip", ["netns", "add", name]))?.status == 0 else {
            return "`ip netns add` failed: no network-namespace support or iproute2 missing"
        }
        _ = try? run("/usr/sbin/ip", ["netns", "del", name])
        return nil
    }()

    /// Enables the test when it can run, or when it must (so that it fails visibly).
    static var canRunOrRequired: Bool { unavailableReason == nil || required }

    static var skipComment: String {
        "skipped: \(unavailableReason ?? "") (set DATAPATH_REQUIRE_NETNS=1 to make this a failure)"
    }

    /// Throws when the environment is missing (only reached when `required`).
    static func check() throws {
        if let reason = unavailableReason { throw LabError("DATAPATH_REQUIRE_NETNS=1 but \(reason)") }
    }

    /// The directory holding the built products (`datapath`, `protocol-counter`).
    static let productsDirectory: URL = {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent()
    }()

    static func product(_ name: String) -> String {
        productsDirectory.appendingPathComponent(name).path
    }
}

struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
