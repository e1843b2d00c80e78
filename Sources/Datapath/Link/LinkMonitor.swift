import DatapathCore
import Logging
import Synchronization

/// Follows the links under the stack's devices (Linux: `linkwatch_event` with the netdevice
/// notifier chain — `NETDEV_CHANGE` for carrier, `NETDEV_CHANGEMTU`, `NETDEV_UNREGISTER`).
/// Each housekeeping round it asks every device with a link of its own (AF_PACKET and API
/// devices; bonds and bridges derive theirs) for its `LinkState` and acts on what changed:
///
/// - carrier lost or regained → `NetCore.setCarrier`: without carrier, transmits are dropped
///   as `.deviceDown` and the device's qdiscs emptied instead of filling and waiting;
/// - MTU changed → the device's MTU follows (never above an MTU set with `link set … mtu`),
///   and route caches are invalidated so routes pick it up (forwarded DF packets then get
///   "fragmentation needed" with the new MTU; the rest are fragmented to it);
/// - interface gone → carrier off for good; the other links keep forwarding.
///
/// Each change is logged once on the stack's logger (`link eth1 (pb) down`).
final class LinkMonitor: Sendable {
    struct Watched {
        var state: LinkState
        /// The MTU set with `link set DEV mtu N`, if any: a ceiling for the medium's.
        var configuredMTU: Int?
    }

    /// By ifindex; touched by housekeeping (worker 0) and by `setMTU` (control plane).
    let watched = Lock<[Int: Watched]>([:])

    /// Starts watching `device`, whose link is taken as up at the device's MTU.
    func watch(_ device: any NetDevice) {
        watched.withLock { $0[device.ifindex] = Watched(state: LinkState(carrier: true, mtu: device.mtu)) }
    }

    /// Records an MTU the control plane set, as the ceiling for the medium's.
    func configure(mtu: Int, ifindex: Int) {
        watched.withLock { $0[ifindex]?.configuredMTU = mtu }
    }

    /// One round: reads each watched device's link and applies what changed.
    func check(_ stack: Stack) {
        var changed = false
        for link in stack.links {
            guard let old = watched.withLock({ $0[link.device.ifindex] }), old.state.exists else { continue }
            let device = link.device
            let now = device.linkState()
            guard now != old.state else { continue }
            let ifindex = device.ifindex
            let label = link.interface.map { "link \(device.name) (\($0))" } ?? "link \(device.name)"
            watched.withLock { $0[ifindex]?.state = now }
            if !now.exists {
                stack.core.setCarrier(false, ifindex: ifindex)
                stack.logger.warning("\(label) lost: the interface is gone; the other links keep forwarding")
                continue
            }
            if now.carrier != old.state.carrier {
                stack.core.setCarrier(now.carrier, ifindex: ifindex)
                stack.logger.notice("\(label) \(now.carrier ? "up" : "down")")
            }
            if now.mtu != old.state.mtu {
                let effective = min(now.mtu, old.configuredMTU ?? now.mtu)
                let before = stack.core.mtu(ifindex: ifindex)
                if effective != before {
                    stack.core.setMTU(effective, ifindex: ifindex)
                    changed = true
                    stack.logger.notice("\(label) mtu \(before) -> \(effective)")
                }
            }
        }
        if changed { stack.fib.invalidateCaches() }
    }
}
