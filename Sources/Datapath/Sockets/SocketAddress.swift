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
    /// `EBADF`-like: no socket with this id is bound.
    case notBound(UInt32)
    /// `EDESTADDRREQ`: no destination given and the socket is not connected.
    case notConnected
    /// `EMSGSIZE`: the datagram is longer than the path MTU allows (with DF), or than 65507.
    case messageTooLong(Int, mtu: Int)
    /// `ENETUNREACH`/`EHOSTUNREACH`: no route to the destination.
    case noRoute(IPv4Address)
    /// `ENOBUFS`: no packet buffer was free.
    case noBufferSpace
    /// `EINVAL`: a destination no datagram can go to (port 0).
    case invalidDestination(SocketAddress)
    /// `ECONNREFUSED`: the peer answered port unreachable.
    case connectionRefused(SocketAddress)
    /// `EHOSTUNREACH`/`ENETUNREACH`: a router or the peer said the destination cannot be reached.
    case unreachable(IPv4Address)
    /// `EPROTO`: the peer or a router answered with a parameter problem.
    case protocolError(IPv4Address)
    /// `EINVAL`: a packet a raw socket with `IP_HDRINCL` cannot send as it is (what is wrong).
    case invalidPacket(String)
    /// `EACCES`: a send to a broadcast address from a socket without `broadcast` (SO_BROADCAST).
    case broadcastNotPermitted(IPv4Address)
    /// `EINVAL`: a group membership for an address that is not multicast.
    case notMulticast(IPv4Address)
    /// `EINVAL`: a UDP_SEGMENT send whose segments do not fit the path MTU, or that makes more
    /// than 64 segments (`UDP_MAX_SEGMENTS`).
    case invalidSegmentSize(Int, mtu: Int)
    /// `EBADF`: the socket was closed.
    case closed
    /// `EAGAIN`: nothing to receive, or no room to send, and the call does not wait.
    case wouldBlock
    /// `ENETDOWN`-like: the stack has no started workers to serve the socket (`Stack.start(on:)`
    /// or `Stack.attach(_:)` first).
    case stackNotRunning

    public var description: String {
        switch self {
        case .addressInUse(let address): "address in use: \(address)"
        case .addressNotAvailable(let address): "cannot assign requested address: \(address) is not local"
        case .noFreePort(let range): "no free local port in \(range.lowerBound)...\(range.upperBound)"
        case .alreadyBound(let address): "already bound to \(address)"
        case .notBound(let id): "socket \(id) is not bound"
        case .notConnected: "destination address required: the socket is not connected"
        case .messageTooLong(let size, let mtu): "message too long: \(size) bytes for a path MTU of \(mtu)"
        case .noRoute(let address): "no route to \(address)"
        case .noBufferSpace: "no buffer space available"
        case .invalidDestination(let address): "invalid destination \(address)"
        case .connectionRefused(let address): "connection refused by \(address)"
        case .unreachable(let address): "\(address) is unreachable"
        case .protocolError(let address): "protocol error: a parameter problem about a datagram to \(address)"
        case .invalidPacket(let reason): "invalid packet: \(reason)"
        case .broadcastNotPermitted(let address): "permission denied: \(address) is a broadcast address (set broadcast)"
        case .notMulticast(let address): "\(address) is not a multicast address"
        case .invalidSegmentSize(let size, let mtu):
            "invalid argument: UDP segments of \(size) bytes (at most 64, each within a path MTU of \(mtu))"
        case .closed: "the socket is closed"
        case .wouldBlock: "resource temporarily unavailable"
        case .stackNotRunning: "the stack has no running workers"
        }
    }
}
