import DatapathWire

/// An IPv4 address and a port (Linux: `struct sockaddr_in`), printed `198.18.1.1:7`.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var port: UInt16

    public init(_ address: IPv4Address, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `0.0.0.0:port`: every local address (`INADDR_ANY`).
    public static func any(port: UInt16 = 0) -> SocketAddress { SocketAddress(.zero, port) }

    public var description: String { "\(address):\(port)" }
}

/// Why a socket call failed: what was asked, and where (Linux's errno for it in the comment).
public enum SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `EADDRINUSE`: another socket holds the address and port, and they do not both allow
    /// sharing (SO_REUSEADDR, or SO_REUSEPORT for the same owner).
    case addressInUse(SocketAddress)
    /// `EADDRNOTAVAIL`: the address is not one of the stack's.
    case addressNotAvailable(IPv4Address)
    /// `EADDRINUSE` on an automatic bind: every port of the ephemeral range is taken.
    case noFreePort(ClosedRange<UInt16>)
    /// `EINVAL`: the socket is bound already.
    case alreadyBound(SocketAddress)

    public var description: String {
        switch self {
        case .addressInUse(let address): "address in use: \(address)"
        case .addressNotAvailable(let address): "cannot assign requested address: \(address) is not local"
        case .noFreePort(let range): "no free local port in \(range.lowerBound)...\(range.upperBound)"
        case .alreadyBound(let address): "already bound to \(address)"
        }
    }
}
