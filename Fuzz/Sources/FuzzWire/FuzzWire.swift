import DatapathFuzzHarness

/// The wire views (see `WireHarness`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    WireHarness.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
