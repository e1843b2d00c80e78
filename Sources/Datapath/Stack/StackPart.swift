import DatapathCore

/// A part of a stack (Linux: a subsystem's `pernet_operations`, whose `init` registers the
/// subsystem in a new `struct net`): the FIB, the neighbour table, ARP, IPv4, raw sockets, UDP,
/// IGMP — and TCP and xfrm when they land. `Stack.init` makes each part with what it needs and
/// then calls `attach(to:)`, in which the part registers itself: its packet-type or IP-protocol
/// handler in the registries, the hooks other parts call it through. The stack's shared rounds
/// take each part's share in turn — `housekeeping` every `Stack.housekeepingInterval` on
/// worker 0, `releaseHeld` at shutdown — so a new subsystem is one more part in `Stack.parts`
/// and neither round changes.
///
/// Threads: `attach` runs once, in `Stack.init`, before any worker (registries);
/// `housekeeping` on worker 0; `releaseHeld` once the workers have stopped.
package protocol StackPart: AnyObject {
    /// Registers the part in `stack`.
    func attach(to stack: Stack)
    /// Its share of the periodic work, on `worker`, at the stack's clock time `now`.
    func housekeeping(worker: Worker, now: UInt64)
    /// Frees the packets it still holds once `workers` (the stack's, stopped; the first is
    /// worker 0) have stopped; returns how many.
    func releaseHeld(workers: [Worker]) -> Int
}

extension StackPart {
    package func housekeeping(worker: Worker, now: UInt64) {}
    package func releaseHeld(workers: [Worker]) -> Int { 0 }
}

extension FIB: StackPart {
    package func attach(to stack: Stack) {
        logger = stack.logger
        quiescence = stack.core.quiescence
    }
}

extension NeighbourTable: StackPart {
    /// A neighbour gone takes the routes cached through it with it.
    package func attach(to stack: Stack) {
        onRemoval = { [fib = stack.fib] in fib.invalidateCaches() }
        logger = stack.logger
    }

    /// Linux: `neigh_timer_handler` for the entries due.
    package func housekeeping(worker: Worker, now: UInt64) { runTimers(worker: worker) }

    /// What waits for resolution.
    package func releaseHeld(workers: [Worker]) -> Int { workers.first.map { releasePending(worker: $0) } ?? 0 }
}

extension ARPHandler: StackPart {
    package func attach(to stack: Stack) { register() }
}

extension IPv4: StackPart {
    package func attach(to stack: Stack) { register() }

    /// Path-MTU exceptions past their time (Linux: `fib_nh_exception`s' `fnhe_expires`).
    package func housekeeping(worker: Worker, now: UInt64) { pmtuExceptions.expire(now: now) }

    /// Each worker's datagrams in reassembly, into its own cache.
    package func releaseHeld(workers: [Worker]) -> Int {
        workers.filter { $0.index < perWorker.count }.reduce(0) { $0 + releaseFragments(worker: $1) }
    }
}

extension RawIP: StackPart {
    /// `raw_v4_input` runs before the protocol handlers: IPv4 calls it.
    package func attach(to stack: Stack) { unsafe stack.ipv4.raw = self }
}

extension UDP: StackPart {
    package func attach(to stack: Stack) { stack.ipv4.addProtocol(.udp, self) }

    /// Corked datagrams never pushed.
    package func releaseHeld(workers: [Worker]) -> Int { corks.discardAll() }
}

extension IGMP: StackPart {
    /// Route input asks it which groups are joined.
    package func attach(to stack: Stack) {
        unsafe stack.ipv4.igmp = self
        stack.ipv4.addProtocol(.igmp, self)
    }
}
