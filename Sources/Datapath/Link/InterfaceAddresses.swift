import DatapathCore
import DatapathWire

/// An IPv4 address on a device (Linux: `struct in_ifaddr`): the address and its prefix.
public struct InterfaceAddress: Hashable, Sendable, CustomStringConvertible {
    public let address: IPv4Address
    public let prefixLength: Int
    public let ifindex: Int

    public init(address: IPv4Address, prefixLength: Int, ifindex: Int) {
        self.address = address
        self.prefixLength = prefixLength
        self.ifindex = ifindex
    }

    /// The connected subnet.
    public var subnet: IPv4Prefix { IPv4Prefix(address: address, length: prefixLength)! }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// The IPv4 addresses of every device (Linux: each `in_device`'s `ifa_list`), a `Snapshot`:
/// written by `addr add` at any time; read by workers (ARP per packet, ICMP, IP options)
/// without a lock — one generation compare — and by the control plane under one.
///
/// Each query takes the `worker` it runs on; nil (the control plane, another thread) reads the
/// published list under its lock.
public final class InterfaceAddresses: Sendable {
    let entries: Snapshot<[InterfaceAddress]>

    /// Addresses that `workers` workers read.
    public init(workers: Int = 1) {
        entries = Snapshot([], workers: workers)
    }

    @inline(__always)
    func list(_ worker: Worker?) -> [InterfaceAddress] {
        if let worker { entries.read(worker) } else { entries.value }
    }

    /// Adds an address (Linux: `inet_insert_ifa`); adding one that exists changes nothing.
    public func add(_ address: InterfaceAddress) {
        entries.update { list in
            if !list.contains(address) { list.append(address) }
        }
    }

    /// Removes an address; returns whether it was there.
    @discardableResult
    public func remove(_ address: InterfaceAddress) -> Bool {
        entries.update { list in
            guard let i = list.firstIndex(of: address) else { return false }
            list.remove(at: i)
            return true
        }
    }

    public var all: [InterfaceAddress] { entries.value }

    public func addresses(ifindex: Int, worker: Worker? = nil) -> [InterfaceAddress] {
        list(worker).filter { $0.ifindex == ifindex }
    }

    /// Whether `address` is configured on device `ifindex`.
    public func isLocal(_ address: IPv4Address, ifindex: Int, worker: Worker? = nil) -> Bool {
        list(worker).contains { $0.address == address && $0.ifindex == ifindex }
    }

    /// Whether `address` is configured on any device (Linux: `inet_addr_type` == RTN_LOCAL).
    public func isLocal(_ address: IPv4Address, worker: Worker? = nil) -> Bool {
        list(worker).contains { $0.address == address }
    }

    /// The source address for talking to `destination` out of `ifindex` (Linux:
    /// `inet_select_addr`): an address of the device whose subnet holds the destination, else
    /// the device's first address, else 0.0.0.0.
    public func sourceAddress(for destination: IPv4Address, ifindex: Int, worker: Worker? = nil) -> IPv4Address {
        var fallback: IPv4Address?
        for entry in list(worker) where entry.ifindex == ifindex {
            if entry.subnet.contains(destination) { return entry.address }
            if fallback == nil { fallback = entry.address }
        }
        return fallback ?? .zero
    }
}
