import DatapathCore

/// Output batches of a device that fans out to ports (a bridge's ports, a bond's slaves): one
/// batch per (worker, port), so stages split a batch by port without allocating or sharing.
/// A port's batches are allocated when the port is added; until then a one-slot placeholder
/// holds its place.
@safe final class PortBatches: @unchecked Sendable {
    let workers: Int
    let ports: Int
    let batches: UnsafeMutablePointer<PacketBatch>

    init(workers: Int, ports: Int) {
        self.workers = max(1, workers)
        self.ports = ports
        let total = self.workers * ports
        unsafe batches = .allocate(capacity: total)
        for i in 0..<total { unsafe (batches + i).initialize(to: PacketBatch(capacity: 1)) }
    }

    deinit {
        let total = workers * ports
        unsafe batches.deinitialize(count: total)
        unsafe batches.deallocate()
    }

    /// Gives `port` full-size batches on every worker (control plane, before workers start).
    func activate(port: Int) {
        for w in 0..<workers {
            unsafe batches[w * ports + port] = PacketBatch()
        }
    }

    /// The batches of `worker`, indexed by port.
    @inline(__always)
    func forWorker(_ worker: Worker) -> UnsafeMutablePointer<PacketBatch> {
        precondition(UInt(bitPattern: worker.index) < UInt(bitPattern: workers),
                     "worker index beyond the workers this device was sized for")
        return unsafe batches + worker.index &* ports
    }
}
