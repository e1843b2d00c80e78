import DatapathCore
import DatapathWire
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An error about a datagram a socket sent, as a receiver gets it and as a socket's error
/// queue holds it (Linux: the `sock_extended_err` that `ip_icmp_error` and `ip_local_error`
/// attach to an skb on `sk_error_queue`, read with `recvmsg(MSG_ERRQUEUE)` under `IP_RECVERR`).
public struct SocketErrorMessage: Sendable, Equatable {
    /// Where the error came from (`ee_origin`).
    public enum Origin: UInt8, Sendable {
        /// `SO_EE_ORIGIN_LOCAL`: this host refused the send (EMSGSIZE past the path MTU).
        case local = 1
        /// `SO_EE_ORIGIN_ICMP`: an ICMP error about the datagram.
        case icmp = 2
    }

    /// The error as the socket's calls throw it.
    public var error: SocketError
    /// `ee_errno`: the errno Linux gives this error (ECONNREFUSED, EHOSTUNREACH, EMSGSIZE, …).
    public var errno: Errno
    public var origin: Origin
    /// `ee_type` and `ee_code`: the ICMP type and code (0 for a local error).
    public var type: UInt8
    public var code: UInt8
    /// `ee_info`: the path MTU for EMSGSIZE, else the ICMP message's second word.
    public var info: UInt32
    /// `SO_EE_OFFENDER`: who sent the ICMP error (a router on the way, or the peer); 0.0.0.0
    /// for a local error.
    public var offender: IPv4Address
    /// Where the datagram was going (`msg_name` of the error queue's read).
    public var destination: SocketAddress
    /// The datagram's payload as far as the error quoted it (for UDP after its header; for a
    /// raw socket from the IP header with `IP_HDRINCL`, else after it).
    public var payload: [UInt8]
    /// What Linux calls fatal (`icmp_err_convert[].fatal`, EMSGSIZE, EPROTO): the only errors a
    /// connected socket without `IP_RECVERR` hears of.
    public var isHard: Bool

    public init(error: SocketError, errno: Errno, origin: Origin, type: UInt8 = 0, code: UInt8 = 0, info: UInt32 = 0,
                offender: IPv4Address = .zero, destination: SocketAddress, payload: [UInt8] = [], isHard: Bool = true) {
        self.error = error
        self.errno = errno
        self.origin = origin
        self.type = type
        self.code = code
        self.info = info
        self.offender = offender
        self.destination = destination
        self.payload = payload
        self.isHard = isHard
    }

    /// A local error met sending to `destination` (Linux: `ip_local_error`, for EMSGSIZE; the
    /// other failures of an asynchronous send become the pending error only).
    init(local error: SocketError, destination: SocketAddress) {
        var mtu: UInt32 = 0
        if case .messageTooLong(_, let size) = error { mtu = UInt32(clamping: size) }
        self.init(error: error, errno: error.errno, origin: .local, info: mtu, destination: destination)
    }

    /// The errno and hardness of an ICMP error (Linux: `icmp_err_convert` for destination
    /// unreachable, as `__udp4_lib_err` and `raw_err` read it; time exceeded EHOSTUNREACH
    /// soft, parameter problem EPROTO hard; fragmentation needed EMSGSIZE, hard unless the
    /// socket lets its datagrams be fragmented). Nil for what reaches no socket: source quench,
    /// redirects, and fragmentation needed under `IP_PMTUDISC_DONT` (UDP; a raw socket still
    /// hears of it, softly).
    static func convert(type: ICMPType, code: ICMPCode, pathMTUDiscovery: PathMTUDiscovery,
                        raw: Bool) -> (errno: Int32, hard: Bool)? {
        switch type {
        case .timeExceeded: return (EHOSTUNREACH, false)
        case .parameterProblem: return (EPROTO, true)
        case .destinationUnreachable:
            if code == ICMPCode.DestinationUnreachable.fragmentationNeeded {
                if pathMTUDiscovery == .dont && !raw { return nil }
                return (EMSGSIZE, pathMTUDiscovery != .dont)
            }
            let table: [(Int32, Bool)] = [
                (ENETUNREACH, false), (EHOSTUNREACH, false), (ENOPROTOOPT, true), (ECONNREFUSED, true),
                (EMSGSIZE, false), (EOPNOTSUPP, false), (ENETUNREACH, true), (EHOSTDOWN, true), (ENONET, true),
                (ENETUNREACH, true), (EHOSTUNREACH, true), (ENETUNREACH, false), (EHOSTUNREACH, false),
                (EHOSTUNREACH, true), (EHOSTUNREACH, true), (EHOSTUNREACH, true),
            ]
            let index = Int(code.rawValue)
            return index < table.count ? table[index] : (EHOSTUNREACH, false)
        default: return nil
        }
    }

    /// The message for an ICMP error about a datagram sent to `destination` whose payload the
    /// error quoted as `payload` (nil when it reaches no socket; see `convert`).
    static func icmp(type: ICMPType, code: ICMPCode, info: UInt32, offender: IPv4Address, destination: SocketAddress,
                     payload: UnsafeRawBufferPointer, sentLength: Int, pathMTUDiscovery: PathMTUDiscovery,
                     raw: Bool = false) -> SocketErrorMessage? {
        guard let (errno, hard) = convert(type: type, code: code, pathMTUDiscovery: pathMTUDiscovery, raw: raw) else {
            return nil
        }
        let error: SocketError = switch errno {
        case ECONNREFUSED: .connectionRefused(destination)
        case EMSGSIZE: .messageTooLong(sentLength, mtu: Int(info & 0xFFFF))
        case EPROTO: .protocolError(destination.address)
        default: .unreachable(destination.address)
        }
        return unsafe SocketErrorMessage(error: error, errno: Errno(rawValue: errno), origin: .icmp, type: type.rawValue, code: code.rawValue,
                                  info: type == .destinationUnreachable && errno == EMSGSIZE ? info & 0xFFFF : info,
                                  offender: offender, destination: destination, payload: Array(payload), isHard: hard)
    }
}

extension SocketError {
    /// The errno Linux returns for this error (swift-system's `Errno`).
    public var errno: Errno {
        switch self {
        case .addressInUse, .noFreePort: .addressInUse
        case .addressNotAvailable: .addressNotAvailable
        case .alreadyBound, .invalidDestination, .invalidPacket, .notMulticast, .invalidSegmentSize: .invalidArgument
        case .notBound, .closed: .badFileDescriptor
        case .notConnected: .addressRequired
        case .messageTooLong: .messageTooLong
        case .noRoute, .unreachable: .noRouteToHost
        case .noBufferSpace: .noBufferSpace
        case .connectionRefused: .connectionRefused
        case .protocolError: .protocolError
        case .broadcastNotPermitted: .permissionDenied
        case .wouldBlock: .wouldBlock
        case .stackNotRunning: .networkDown
        }
    }
}

/// A socket's error queue (Linux: `sk_error_queue`): the messages `IP_RECVERR` keeps, oldest
/// first, at most `capacity` (further ones are dropped while it is full, as Linux drops them
/// past the receive buffer).
final class SocketErrorQueue: @unchecked Sendable {
    static let capacity = 64
    let messages = Lock<[SocketErrorMessage]>([])
    /// `IP_RECVERR`, as the socket's options last set it.
    let enabled = Atomic<Bool>(false)

    /// Queues `message`; false when full.
    @discardableResult
    func enqueue(_ message: SocketErrorMessage) -> Bool {
        messages.withLock { list in
            guard list.count < Self.capacity else { return false }
            list.append(message)
            return true
        }
    }

    /// The oldest message and the next one's error (what Linux's `sock_dequeue_err_skb` leaves
    /// in `sk_err`).
    func dequeue() -> (SocketErrorMessage, next: SocketError?)? {
        messages.withLock { list in
            guard !list.isEmpty else { return nil }
            let first = list.removeFirst()
            return (first, list.first?.error)
        }
    }

    func removeAll() { messages.withLock { $0.removeAll() } }
}
