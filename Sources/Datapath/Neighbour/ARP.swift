import DatapathCore
import DatapathWire

/// ARP (RFC 826) for IPv4 over Ethernet (Linux: `net/ipv4/arp.c`): `arp_rcv` → `arp_process`
/// as a protocol handler for EtherType 0x0806, and `arp_create` for frames the stack sends.
///
/// Semantics follow Linux with `arp_accept=0`, `arp_announce=0`, and one written difference:
/// requests are answered only for addresses of the device they arrive on (Linux's
/// `arp_ignore=1`; its default 0 also answers for other devices' addresses, which a router
/// joining several segments should not do).
public final class ARPHandler: PacketTypeHandler, @unchecked Sendable {
    public let neighbours: NeighbourTable
    var core: NetCore { neighbours.core }
    var addresses: InterfaceAddresses { neighbours.addresses }
    let counters: WorkerLocal<CounterBlock>
    public let stage = StageID.named("arp-rcv")
    /// The scratch batch replies are collected in.
    /// Per worker, the replies one batch of requests makes.
    let replies: ScratchBatches

    /// Counters, per worker and summed (Linux keeps none for ARP; `ip -s neigh` comes closest).
    public enum Counter: Int, CaseIterable, Sendable {
        case requestsReceived, repliesReceived, repliesSent, gratuitousReceived, ignored
    }

    public init(neighbours: NeighbourTable, workers: Int) {
        self.neighbours = neighbours
        self.counters = WorkerLocal(workers: max(1, workers)) { _ in CounterBlock(count: Counter.allCases.count) }
        self.replies = ScratchBatches(workers: max(1, workers))
    }

    public subscript(counter: Counter) -> UInt64 { counters.reduce(0) { $0 &+ $1[counter.rawValue] } }

    /// Registers for EtherType ARP on `core` (Linux: `dev_add_pack(&arp_packet_type)`).
    public func register() { core.addPacketType(.arp, self) }

    /// Linux: `arp_rcv` → `arp_process`, for a batch from one device.
    ///
    /// Reads: the ARP packet, `inputIfindex`, `packetType`. Writes: requests for our addresses
    /// are turned into their replies in place (copied first when the data is shared).
    /// Next: replies to `devQueueXmit` on the receiving device; neighbour updates.
    /// Drops: `.arpInvalid` (not Ethernet/IPv4, unknown operation, multicast or loopback
    /// target, multicast sender MAC), `.noMemory`. Everything else is consumed.
    public func receive(_ batch: inout PacketBatch, worker: Worker) {
        let start = cycleCount()
        let packets = batch.count
        let counters = self.counters[worker]
        guard let device = core.devices[batch[0].inputIfindex] else {
            worker.drop(&batch, .notSpecified)
            return
        }
        var replies = unsafe self.replies.batch(worker).pointee.view()
        replies.removeAll()
        for i in batch.indices {
            let skb = batch[i]
            guard let arp = unsafe ARPPacket(skb.data, length: skb.length),
                  arp.operation == .request || arp.operation == .reply else {
                worker.drop(skb, .arpInvalid)
                continue
            }
            let operation = arp.operation
            let sender = arp.senderProtocolAddress
            let target = arp.targetProtocolAddress
            let senderMAC = arp.senderHardwareAddress
            if target.isMulticast || target.isLoopback || senderMAC.isMulticast || senderMAC.isZero {
                worker.drop(skb, .arpInvalid)
                continue
            }
            let ifindex = device.ifindex
            counters.add(operation == .request ? Counter.requestsReceived.rawValue : Counter.repliesReceived.rawValue)
            let forUs = operation == .request && addresses.isLocal(target, ifindex: ifindex, worker: worker)

            if sender.isZero {
                // RFC 5227 address probe: answer if it asks for ours, learn nothing.
                if forUs, let reply = makeReply(skb, device: device, worker: worker) {
                    replies.append(reply)
                } else {
                    worker.cache.free(skb)
                }
                continue
            }
            if forUs {
                // Linux: `neigh_event_ns` — learn the asker, then answer.
                neighbours.learnFromRequest(sender, linkAddress: senderMAC, device: device, worker: worker)
                if let reply = makeReply(skb, device: device, worker: worker) { replies.append(reply) }
                continue
            }
            // A reply, or a request for someone else: update what we already know (arp_accept=0
            // creates nothing). Gratuitous ARP (sender == target) overrides within locktime.
            let gratuitous = sender == target
                && (operation == .request || arp.targetHardwareAddress == senderMAC)
            if gratuitous { counters.add(Counter.gratuitousReceived.rawValue) }
            if let neighbour = neighbours.lookup(sender, ifindex: ifindex) {
                let confirmed = operation == .reply && skb.packetType == .host
                neighbours.arpUpdate(neighbour, linkAddress: senderMAC, confirmed: confirmed,
                                     gratuitous: gratuitous, worker: worker)
            } else {
                counters.add(Counter.ignored.rawValue)
            }
            worker.cache.free(skb)
        }
        batch.removeAll()
        counters.add(Counter.repliesSent.rawValue, UInt64(replies.count))
        core.devQueueXmit(&replies, device: device, worker: worker)
        unsafe self.replies.batch(worker).pointee.removeAll()
        worker.stages.record(stage, packets: packets, cycles: cycleCount() &- start)
    }

    /// Turns a request into its reply in place (Linux builds a new skb with `arp_send`; the
    /// bytes are the same): we answer with our MAC, to the asker's MAC. Nil (and the skb freed
    /// with `.noMemory`) when shared data could not be copied.
    func makeReply(_ request: SKB, device: any NetDevice, worker: Worker) -> SKB? {
        guard let skb = worker.unshare(request) else { return nil }
        let arp = unsafe ARPPacket(unchecked: skb.data)
        let asker = arp.senderHardwareAddress
        let reply = ARPRepr(operation: .reply, senderHardwareAddress: device.macAddress,
                            senderProtocolAddress: arp.targetProtocolAddress,
                            targetHardwareAddress: asker, targetProtocolAddress: arp.senderProtocolAddress)
        skb.trim(to: ARPPacket.length)
        guard let frame = unsafe skb.push(EthernetHeader.length) else {
            worker.drop(skb, .noMemory)
            return nil
        }
        unsafe ARP.write(reply, to: frame, destination: asker)
        return skb
    }
}

extension NeighbourTable {
    /// The neighbour update of `arp_process` for replies and requests not addressed to us:
    /// a solicited reply to our MAC confirms (REACHABLE), anything else says STALE; a
    /// different address replaces the known one only after `lockTime`, or for gratuitous ARP.
    package func arpUpdate(_ neighbour: Neighbour, linkAddress: MACAddress, confirmed: Bool, gratuitous: Bool,
                          worker: Worker) {
        state.withLock { table in
            let now = clock.now()
            let override = now >= neighbour.updated &+ parameters.lockTime.nanoseconds || gratuitous
            neighUpdate(neighbour, linkAddress: linkAddress, to: confirmed ? .reachable : .stale,
                        flags: override ? .override : [], now: now, worker: worker, table: &table)
        }
    }
}

/// Building ARP frames (Linux: `arp_create`).
public enum ARP {
    /// A complete Ethernet + ARP frame from `device` (42 bytes: the device pads if it must),
    /// in a fresh skb with headroom; nil when the pool is empty (counted as `.noMemory`).
    package static func makeFrame(operation: ARPOperation, device: any NetDevice, senderAddress: IPv4Address,
                                 targetHardwareAddress: MACAddress, targetAddress: IPv4Address,
                                 destination: MACAddress, worker: Worker) -> SKB? {
        guard let skb = worker.cache.allocate() else {
            worker.drops.count(.noMemory)
            return nil
        }
        skb.reserve(64)
        guard let frame = unsafe skb.put(EthernetHeader.length + ARPPacket.length) else {
            worker.drop(skb, .noMemory)
            return nil
        }
        unsafe write(ARPRepr(operation: operation, senderHardwareAddress: device.macAddress, senderProtocolAddress: senderAddress,
                      targetHardwareAddress: targetHardwareAddress, targetProtocolAddress: targetAddress),
              to: frame, destination: destination)
        skb.protocolType = EtherType.arp.rawValue
        return skb
    }

    /// Writes an Ethernet header (source: the ARP sender) and `packet` behind it at `frame`, which
    /// has room for 42 bytes. The ARP body goes first: in a reply made in place it overlaps
    /// nothing, and the header is written last.
    static func write(_ packet: ARPRepr, to frame: UnsafeMutableRawPointer, destination: MACAddress) {
        unsafe packet.emit(to: frame + EthernetHeader.length)
        let ethernet = unsafe EthernetHeader(unchecked: frame)
        ethernet.destination = destination
        ethernet.source = packet.senderHardwareAddress
        ethernet.etherType = .arp
    }

    /// A gratuitous ARP request announcing `address` on `device` (Linux:
    /// `inet_gratuitous_arp`, sent on `NETDEV_NOTIFY_PEERS`, e.g. after a bond fails over).
    public static func gratuitous(_ address: IPv4Address, device: any NetDevice, worker: Worker) -> SKB? {
        makeFrame(operation: .request, device: device, senderAddress: address, targetHardwareAddress: .zero,
                  targetAddress: address, destination: .broadcast, worker: worker)
    }
}
