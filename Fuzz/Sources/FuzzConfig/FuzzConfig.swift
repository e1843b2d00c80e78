import DatapathFuzzHarness

/// The command language (see `ConfigHarness`): a configuration applies whole or changes nothing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    ConfigHarness.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
