import DatapathCore
import DatapathWire

extension IPv4 {
    /// Placeholder until reassembly lands: fragments are dropped.
    func ipDefragment(_ batch: inout PacketBatch, worker: Worker) {
        var kept = 0
        for i in batch.indices {
            let skb = batch[i]
            if IPv4Header(unchecked: skb.data).isFragment {
                worker.drop(skb, .notSpecified)
                continue
            }
            batch[kept] = skb
            kept &+= 1
        }
        batch.count = kept
    }
}
