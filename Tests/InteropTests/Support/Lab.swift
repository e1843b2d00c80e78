import Foundation

/// Network namespaces joined by veth pairs, made by one test and deleted by it. Names carry
/// the PID and a counter; addresses come only from 198.18.0.0/15 (RFC 2544). Interfaces that
/// the datapath drives get no kernel address and no IPv6, so the kernel never answers for it.
final class Lab {
    nonisolated(unsafe) static var counter = 0
    static let counterLock = NSLock()

    let prefix: String
    private(set) var namespaces: [String] = []

    init() throws {
        try NetnsEnvironment.check()
        Lab.removeNamespacesOfDeadRuns()
        Lab.counterLock.lock()
        Lab.counter += 1
        prefix = "dpt\(getpid())x\(Lab.counter)"
        Lab.counterLock.unlock()
    }

    deinit { destroy() }

    /// Deletes `dpt<pid>x…` namespaces whose test process is gone (a crashed run cannot clean
    /// up after itself).
    static func removeNamespacesOfDeadRuns() {
        guard let list = try? run("/usr/sbin/ip", ["netns", "list"]) else { return }
        for line in list.stdout.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix("dpt"), let x = name.firstIndex(of: "x"),
                  let pid = Int32(name[name.index(name.startIndex, offsetBy: 3)..<x]),
                  pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? run("/usr/sbin/ip", ["netns", "del", name])
        }
    }

    /// Creates a namespace `<prefix>-<name>` with lo up; returns its full name.
    @discardableResult
    func namespace(_ name: String) throws -> String {
        let full = "\(prefix)-\(name)"
        try ip(["netns", "add", full])
        namespaces.append(full)
        try ip(["-n", full, "link", "set", "lo", "up"])
        return full
    }

    /// A veth pair between two namespaces, both ends up with IPv6 off and the given MACs.
    func veth(_ a: String, in nsA: String, mac macA: String, _ b: String, in nsB: String, mac macB: String) throws {
        try ip(["link", "add", a, "netns", nsA, "type", "veth", "peer", "name", b, "netns", nsB])
        for (dev, ns, mac) in [(a, nsA, macA), (b, nsB, macB)] {
            try ip(["-n", ns, "link", "set", dev, "address", mac])
            _ = try exec(ns, "/usr/sbin/sysctl", ["-qw", "net.ipv6.conf.\(dev).disable_ipv6=1"])
            try ip(["-n", ns, "link", "set", dev, "up"])
        }
        // The kernel sets operstate (IFF_RUNNING) asynchronously, through linkwatch, up to a
        // second after carrier: wait for it, or link monitors would see a flapping link.
        for (dev, ns) in [(a, nsA), (b, nsB)] { try waitForOperstateUp(dev, in: ns) }
    }

    func waitForOperstateUp(_ dev: String, in ns: String) throws {
        for _ in 0..<100 {
            let show = try run("/usr/sbin/ip", ["-n", ns, "link", "show", "dev", dev]).stdout
            if show.contains("state UP") { return }
            usleep(20_000)
        }
        throw LabError("\(dev) in \(ns) did not come up within 2 s")
    }

    func address(_ cidr: String, dev: String, in ns: String) throws {
        try ip(["-n", ns, "addr", "add", cidr, "dev", dev])
    }

    /// Runs a command inside a namespace to completion.
    @discardableResult
    func exec(_ ns: String, _ executable: String, _ arguments: [String], timeout: Double = 60) throws -> CommandResult {
        try run("/usr/sbin/ip", ["netns", "exec", ns, executable] + arguments, timeout: timeout)
    }

    /// Starts a command inside a namespace in the background.
    func spawn(_ ns: String, _ executable: String, _ arguments: [String]) throws -> BackgroundCommand {
        try BackgroundCommand("/usr/sbin/ip", ["netns", "exec", ns, executable] + arguments)
    }

    func ip(_ arguments: [String]) throws {
        let result = try run("/usr/sbin/ip", arguments)
        guard result.status == 0 else {
            throw LabError("ip \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
    }

    func destroy() {
        for ns in namespaces.reversed() { _ = try? run("/usr/sbin/ip", ["netns", "del", ns]) }
        namespaces.removeAll()
    }
}
