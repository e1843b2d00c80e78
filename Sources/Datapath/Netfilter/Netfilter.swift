import DatapathCore
import Synchronization

/// The five IPv4 netfilter hooks (Linux: `enum nf_inet_hooks`).
public enum NetfilterHook: Int, CaseIterable, Sendable, CustomStringConvertible {
    case preRouting, localIn, forward, localOut, postRouting

    public var description: String {
        switch self {
        case .preRouting: "PREROUTING"
        case .localIn: "INPUT"
        case .forward: "FORWARD"
        case .localOut: "OUTPUT"
        case .postRouting: "POSTROUTING"
        }
    }
}

/// What a hook function decides for one packet (Linux: `NF_ACCEPT`, `NF_DROP`, `NF_STOLEN`,
/// `NF_REPEAT`; userspace `NF_QUEUE` is not offered).
public enum NetfilterVerdict: UInt8, Sendable {
    /// On to the next hook function, then the stage after the hook.
    case accept
    /// Freed and counted as `.netfilterDrop`.
    case drop
    /// The hook function took the skb: it is out of the batch and not freed.
    case stolen
    /// Run the same hook function again on this skb.
    case `repeat`
}

/// A function registered on a hook (Linux: `struct nf_hook_ops`). It sees the whole batch and
/// writes one verdict per skb (all start as `.accept`); it may change packets but not the batch.
public protocol NetfilterHookFunction: AnyObject, Sendable {
    func hook(_ hook: NetfilterHook, batch: borrowing PacketBatch,
              verdicts: UnsafeMutablePointer<NetfilterVerdict>, worker: Worker)
}

/// The hook registry and `NF_HOOK` (Linux: `nf_register_net_hook`, `nf_hook_slow`). Functions
/// run in ascending priority (Linux's `NF_IP_PRI_*` numbers: filter is 0, conntrack −200 …).
/// A hook with no functions costs one load and one branch per batch. Registration may happen
/// while workers run: the lists are a `Snapshot`, which a worker reads once per batch without a
/// lock.
@safe public final class Netfilter: @unchecked Sendable {
    struct Registration: Sendable {
        let function: any NetfilterHookFunction
        let priority: Int
    }

    /// Per hook, its functions in the order they run.
    let registrations: Snapshot<[[Registration]]>
    /// Per hook: 1 when it has functions. Read without a lock.
    let populated = UnsafeMutablePointer<UInt32>.allocate(capacity: NetfilterHook.allCases.count)
    /// Per worker: verdicts for one batch, and two batches that take turns holding the skbs a
    /// function asked to see again and the ones it is seeing again.
    let scratch: WorkerLocal<HookScratch>
    /// How often one function may say REPEAT for a batch before the rest are dropped (Linux
    /// loops without bound; a buggy function must not hang a worker here).
    public static let maximumRepeats = 16

    @safe final class HookScratch {
        let verdicts = UnsafeMutablePointer<NetfilterVerdict>.allocate(capacity: PacketBatch.maximumCount)
        let asked = PacketBatch()
        let retry = PacketBatch()

        init() { unsafe verdicts.initialize(repeating: .accept, count: PacketBatch.maximumCount) }

        deinit {
            unsafe verdicts.deallocate()
        }
    }

    public init(workers: Int) {
        unsafe populated.initialize(repeating: 0, count: NetfilterHook.allCases.count)
        registrations = Snapshot(Array(repeating: [], count: NetfilterHook.allCases.count), workers: workers)
        scratch = WorkerLocal(workers: max(1, workers)) { _ in HookScratch() }
    }

    deinit { unsafe populated.deallocate() }

    /// Adds `function` to `hook` at `priority` (Linux: `nf_register_net_hook`).
    public func register(_ function: any NetfilterHookFunction, on hook: NetfilterHook, priority: Int) {
        registrations.update { lists in
            lists[hook.rawValue].append(Registration(function: function, priority: priority))
            // Stable: equal priorities keep registration order.
            lists[hook.rawValue] = lists[hook.rawValue].enumerated()
                .sorted { ($0.element.priority, $0.offset) < ($1.element.priority, $1.offset) }.map(\.element)
            unsafe SharedWord.store(populated + hook.rawValue, 1)
        }
    }

    /// Removes `function` from `hook` (Linux: `nf_unregister_net_hook`).
    public func unregister(_ function: any NetfilterHookFunction, from hook: NetfilterHook) {
        registrations.update { lists in
            lists[hook.rawValue].removeAll { $0.function === function }
            unsafe SharedWord.store(populated + hook.rawValue, lists[hook.rawValue].isEmpty ? 0 : 1)
        }
    }

    /// The function registered on `hook` when it is the only one, as `worker` sees the lists.
    package func soleFunction(on hook: NetfilterHook, worker: Worker) -> (any NetfilterHookFunction)? {
        let list = registrations.read(worker)[hook.rawValue]
        return list.count == 1 ? list[0].function : nil
    }

    /// Whether no function is registered on `hook` (one load; workers may ask per batch).
    @inline(__always)
    public func isEmpty(_ hook: NetfilterHook) -> Bool { unsafe SharedWord.load(populated + hook.rawValue) == 0 }

    /// Runs `hook`'s functions over `batch` (Linux: `NF_HOOK` → `nf_hook_slow`); the skbs left
    /// in `batch` were accepted by every function, in their original order (repeated ones last).
    /// Drops: `.netfilterDrop`.
    @inline(__always)
    public func run(_ hook: NetfilterHook, _ batch: inout PacketBatch, worker: Worker) {
        if unsafe SharedWord.load(populated + hook.rawValue) == 0 || batch.isEmpty { return }
        runSlow(hook, &batch, worker: worker)
    }

    func runSlow(_ hook: NetfilterHook, _ batch: inout PacketBatch, worker: Worker) {
        let functions = registrations.read(worker)[hook.rawValue]
        let scratch = self.scratch[worker]
        for registration in functions {
            var asked = scratch.asked.view()
            var retry = scratch.retry.view()
            unsafe apply(registration.function, hook, &batch, verdicts: scratch.verdicts, repeats: &asked, worker: worker)
            var rounds = 0
            while !asked.isEmpty {
                rounds += 1
                if rounds > Netfilter.maximumRepeats {
                    worker.drop(&asked, .netfilterDrop)
                    break
                }
                swap(&asked, &retry)
                asked.removeAll()
                unsafe apply(registration.function, hook, &retry, verdicts: scratch.verdicts, repeats: &asked, worker: worker)
                // Accepted on a later round: they join the batch after the others.
                for i in retry.indices { batch.append(retry[i]) }
                retry.removeAll()
            }
            if batch.isEmpty { return }
        }
    }

    /// One function over one batch: sorts skbs by verdict, keeping the accepted in `batch`.
    @inline(__always)
    func apply(_ function: any NetfilterHookFunction, _ hook: NetfilterHook, _ batch: inout PacketBatch,
               verdicts: UnsafeMutablePointer<NetfilterVerdict>, repeats: inout PacketBatch, worker: Worker) {
        let count = batch.count
        unsafe verdicts.update(repeating: .accept, count: count)
        unsafe function.hook(hook, batch: batch, verdicts: verdicts, worker: worker)
        var kept = 0
        for i in 0..<count {
            let skb = batch[i]
            switch unsafe verdicts[i] {
            case .accept:
                batch[kept] = skb
                kept &+= 1
            case .drop:
                worker.drop(skb, .netfilterDrop)
            case .stolen:
                break
            case .repeat:
                repeats.append(skb)
            }
        }
        batch.count = kept
    }
}
