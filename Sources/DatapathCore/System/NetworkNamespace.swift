import CDatapath

#if canImport(Glibc)
import Glibc
#endif

/// Network namespaces (`ip netns`), for driving interfaces that live in one.
package enum NetworkNamespace {
    /// Moves the calling thread — only it — into the namespace `name` made by `ip netns add`
    /// (setns(2) on /run/netns/NAME). Sockets it opens afterwards belong to that namespace.
    public static func enterOnCurrentThread(named name: String) throws(NetworkNamespaceError) {
        let rc = "/run/netns/\(name)".withCString { CDatapath_enter_netns($0) }
        if rc < 0 { throw NetworkNamespaceError(name: name, errno: -rc) }
    }
}

/// A namespace that could not be entered.
package struct NetworkNamespaceError: Error, CustomStringConvertible, Sendable {
    public let name: String
    public let errno: Int32
    public var description: String {
        switch errno {
        case ENOENT: "no such network namespace: \(name) (see `ip netns list`)"
        case EPERM: "cannot enter network namespace \(name): needs CAP_SYS_ADMIN: run as root"
        default: "cannot enter network namespace \(name): \(String(cString: strerror(errno)))"
        }
    }
}
