/// A protocol handler registered for one EtherType (Linux: a `struct packet_type` in
/// `ptype_base`, added with `dev_add_pack`). Gets a batch whose skbs all carry its EtherType,
/// `data` at the network header; it owns them from then on.
public protocol PacketTypeHandler: AnyObject, Sendable {
    func receive(_ batch: inout PacketBatch, worker: Worker)
}

/// A device's receive hook ahead of protocol dispatch (Linux: `rx_handler`, as bonding,
/// bridging and macvlan install). It consumes what it takes (freeing or forwarding it) and
/// leaves in `batch` what should go on. To pass frames on as another device's (Linux's
/// `RX_HANDLER_ANOTHER`), it sets their `inputIfindex`; survivors must then all name one device.
public protocol RxHandler: AnyObject, Sendable {
    func receive(_ batch: inout PacketBatch, worker: Worker)
}

/// A packet tap (Linux: a `ptype_all` entry, as AF_PACKET sockets and tcpdump use). Sees every
/// frame of its device (or of all devices) before any rx_handler; must not keep or change them.
public protocol PacketTap: AnyObject, Sendable {
    func tap(_ batch: borrowing PacketBatch, device: any NetDevice, worker: Worker)
}
