import CDatapath

/// Large, zeroed memory on huge-page-aligned mappings advised for transparent huge pages:
/// for lookup tables that are read at random (FIB tries), where 4 KiB pages would cost a TLB
/// miss per lookup. Falls back to ordinary allocation if the mapping fails.
package struct LargeMemory: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let bytes: Int
    let mapped: Bool

    public init(bytes: Int) {
        self.bytes = max(1, bytes)
        if let p = CDatapath_alloc_large(self.bytes) {
            base = p
            mapped = true
        } else {
            base = .allocate(byteCount: self.bytes, alignment: 64)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: self.bytes)
            mapped = false
        }
    }

    public func deallocate() {
        if mapped { CDatapath_free_large(base, bytes) } else { base.deallocate() }
    }
}
