import DatapathWire
import Synchronization

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

/// The IPv4 addresses of every device (Linux: each `in_device`'s `ifa_list`). Written by
/// `addr add` at any time; read by ARP once per packet under an uncontended lock that never
/// allocates. (The IPv4 issue turns these into local routes in the FIB snapshot.)
public final class InterfaceAddresses: Sendable {
    let entries = Mutex<[InterfaceAddress]>([])

    public init() {}

    /// Adds an address (Linux: `inet_insert_ifa`); adding one that exists changes nothing.
    public func add(_ address: InterfaceAddress) {
        entries.withLock { list in
            if !list.contains(address) { list.append(address) }
        }
    }

    /// Removes an address; returns whether it was there.
    @discardableResult
    public func remove(_ address: InterfaceAddress) -> Bool {
        entries.withLock { list in
            guard let i = list.firstIndex(of: address) else { return false }
            list.remove(at: i)
            return true
        }
    }

    public var all: [InterfaceAddress] { entries.withLock { $0 } }

    public func addresses(ifindex: Int) -> [InterfaceAddress] {
        entries.withLock { $0.filter { $0.ifindex == ifindex } }
    }

    /// Whether `address` is configured on device `ifindex`.
    public func isLocal(_ address: IPv4Address, ifindex: Int) -> Bool {
        entries.withLock { list in list.contains { $0.address == address && $0.ifindex == ifindex } }
    }

    /// Whether `address` is configured on any device (Linux: `inet_addr_type` == RTN_LOCAL).
    public func isLocal(_ address: IPv4Address) -> Bool {
        entries.withLock { list in list.contains { $0.address == address } }
    }

    /// The source address for talking to `destination` out of `ifindex` (Linux:
    /// `inet_select_addr`): an address of the device whose subnet holds the destination, else
    /// the device's first address, else 0.0.0.0.
    public func sourceAddress(for destination: IPv4Address, ifindex: Int) -> IPv4Address {
        entries.withLock { list in
            var fallback: IPv4Address?
            for entry in list where entry.ifindex == ifindex {
                if entry.subnet.contains(destination) { return entry.address }
                if fallback == nil { fallback = entry.address }
            }
            return fallback ?? .zero
        }
    }
}
