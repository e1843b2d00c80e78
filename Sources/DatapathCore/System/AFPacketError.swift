#if canImport(Glibc)
import Glibc
#endif

/// A failure to open or drive an AF_PACKET interface, saying what, where and how to fix it.
public struct AFPacketError: Error, CustomStringConvertible, Equatable, Sendable {
    public let interface: String
    /// The system call (or step) that failed.
    public let call: String
    public let errno: Int32

    public init(interface: String, call: String, errno: Int32) {
        self.interface = interface
        self.call = call
        self.errno = errno
    }

    public var description: String {
        if call.hasPrefix("bpf") {
            return "cannot keep the kernel's stack off \(interface) (it will process the frames too): "
                + "\(String(cString: strerror(errno))) (\(call); needs kernel 6.6 and CAP_BPF)"
        }
        switch errno {
        case ENODEV, ENXIO:
            return "no such interface: \(interface)"
        case EPERM, EACCES:
            return "cannot open \(interface): needs CAP_NET_RAW: run as root (\(call))"
        case ENETDOWN:
            return "cannot open \(interface): interface is down: run `ip link set \(interface) up` (\(call))"
        case ENAMETOOLONG:
            return "cannot open \(interface): interface names have at most 15 characters"
        case ENOMEM where call == "mmap":
            return "cannot open \(interface): ring too large for locked memory: raise `ulimit -l` or use smaller rings (mmap)"
        default:
            return "cannot open \(interface): \(String(cString: strerror(errno))) (\(call))"
        }
    }
}
