import DatapathFuzzHarness

/// The whole receive path on in-memory devices (see `StackReceiveHarness`): one stack for the
/// run, every input checked against the invariants.
nonisolated(unsafe) let harness = try! StackReceiveHarness()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    harness.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
