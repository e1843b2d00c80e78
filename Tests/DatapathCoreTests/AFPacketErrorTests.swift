import Testing
import DatapathCore

#if canImport(Glibc)
import Glibc
#endif

/// What `AFPacketError` tells an operator, for the calls whose fix differs.
@Suite struct AFPacketErrorTests {
    @Test func eachFailureNamesTheInterfaceTheCallAndTheFix() {
        #expect(AFPacketError(interface: "x0", call: "bpf(BPF_LINK_CREATE, tcx ingress)", errno: EINVAL).description
                == "cannot keep the kernel's stack off x0 (it will process the frames too): Invalid argument "
                + "(bpf(BPF_LINK_CREATE, tcx ingress); needs kernel 6.6 and CAP_BPF)")
        #expect(AFPacketError(interface: "x0", call: "socket", errno: EPERM).description
                == "cannot open x0: needs CAP_NET_RAW: run as root (socket)")
        #expect(AFPacketError(interface: "x0", call: "bind", errno: ENETDOWN).description
                == "cannot open x0: interface is down: run `ip link set x0 up` (bind)")
    }
}
