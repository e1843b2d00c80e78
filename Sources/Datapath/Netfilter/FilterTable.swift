import DatapathCore
import DatapathWire
import Synchronization

/// The built-in `filter` table (Linux: iptables' `filter` table, `iptable_filter` at priority
/// `NF_IP_PRI_FILTER` = 0 on INPUT, FORWARD and OUTPUT): per hook an ordered rule list, first
/// match wins, no match accepts (policy ACCEPT). It registers on a hook only once that hook
/// has a rule, so a hook without rules keeps costing one branch.
package final class FilterTable: NetfilterHookFunction, @unchecked Sendable {
    unowned let ipv4: IPv4
    let netfilter: Netfilter
    let workers: Int
    /// Rule lists per hook, with their matches as plain values for the scan; workers read them
    /// once per batch without a lock.
    let hooks: Snapshot<[HookRules]>

    /// One hook's rules, in order, and their matches.
    struct HookRules: Sendable {
        var rules: [FilterRule] = []
        var matches: [FilterMatch] = []
    }
    /// The filter table's priority (Linux: `NF_IP_PRI_FILTER`).
    public static let priority = 0

    /// The hooks the table is registered on.
    let registered = Lock<Set<Int>>([])

    init(ipv4: IPv4, netfilter: Netfilter, workers: Int) {
        self.ipv4 = ipv4
        self.netfilter = netfilter
        self.workers = max(1, workers)
        self.hooks = Snapshot(Array(repeating: HookRules(), count: NetfilterHook.allCases.count), workers: workers)
    }

    /// Appends a rule to its hook (iptables `-A`), with devices already resolved.
    public func append(_ spec: FilterRuleSpec, inputIfindex: Int = 0, outputIfindex: Int = 0) {
        let rule = FilterRule(spec: spec, inputIfindex: inputIfindex, outputIfindex: outputIfindex, workers: workers)
        hooks.update { hooks in
            hooks[spec.hook.rawValue].rules.append(rule)
            hooks[spec.hook.rawValue].matches.append(rule.match)
        }
        // Once per hook: a hook whose rules were all deleted keeps its registration, and a
        // second one would run the table twice (counting every rule twice, and keeping the
        // forwarding fast path off for good: found by the soak).
        if registered.withLock({ $0.insert(spec.hook.rawValue).inserted }) {
            netfilter.register(self, on: spec.hook, priority: FilterTable.priority)
        }
    }

    /// Removes rule `number` (1-based) of `hook` (iptables `-D CHAIN RULENUM`); false when the
    /// hook has no such rule. The hook keeps its registration (an empty list accepts all).
    @discardableResult
    public func remove(_ hook: NetfilterHook, number: Int) -> Bool {
        hooks.update { hooks -> Bool in
            guard number >= 1 && number <= hooks[hook.rawValue].rules.count else { return false }
            hooks[hook.rawValue].rules.remove(at: number - 1)
            hooks[hook.rawValue].matches.remove(at: number - 1)
            return true
        }
    }

    /// How many rules `hook` has.
    public func count(_ hook: NetfilterHook) -> Int { hooks.value[hook.rawValue].rules.count }

    /// Every rule, hook by hook in path order, then rule order.
    public var allRules: [FilterRule] { hooks.value.flatMap(\.rules) }

    /// A hook's rules and their matches as `worker` sees them (once per batch).
    @inline(__always)
    func rules(_ hook: NetfilterHook, worker: Worker) -> HookRules { hooks.read(worker)[hook.rawValue] }

    /// Linux: `ipt_do_table` for one batch.
    public func hook(_ hook: NetfilterHook, batch: borrowing PacketBatch, verdicts: UnsafeMutablePointer<NetfilterVerdict>,
                     worker: Worker) {
        let current = rules(hook, worker: worker)
        let list = current.rules, scan = current.matches
        guard !list.isEmpty, list.count == scan.count else { return }
        let skbs = unsafe batch.slots, count = batch.count
        unsafe scan.withUnsafeBufferPointer { scan in
            for i in 0..<count {
                let skb = unsafe skbs[i]
                let fields = FilterFields(skb, hook: hook)
                guard let index = unsafe scan.firstIndex(where: { $0.matches(fields) }) else { continue }
                unsafe verdicts[i] = apply(list[index], to: skb, hook: hook, worker: worker)
            }
        }
    }

    /// Counts a match of `bytes` bytes on the worker's counters.
    @inline(__always)
    func count(_ rule: FilterRule, bytes: Int, worker: Worker) {
        let counters = rule.counters[worker]
        counters.add(0)
        counters.add(1, UInt64(bytes))
    }

    /// Counts a match and carries out its rule's verdict (a reject answers from here).
    func apply(_ rule: FilterRule, to skb: SKB, hook: NetfilterHook, worker: Worker) -> NetfilterVerdict {
        count(rule, bytes: skb.length, worker: worker)
        switch rule.spec.verdict {
        case .accept:
            return .accept
        case .drop:
            return .drop
        case .reject(let code):
            if hook != .localOut {
                ipv4.icmp.sendError(for: skb, type: .destinationUnreachable, code: code, worker: worker)
            }
            return .drop
        }
    }
}
