import DatapathFuzzHarness

/// UDP receive to sockets of every binding (see `UDPReceiveHarness`): one stack for the run,
/// every input checked against the invariants.
nonisolated(unsafe) let harness = try! UDPReceiveHarness()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    harness.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

// SwiftPM links an executable with its entry point renamed to `FuzzUDPReceive_main`; libFuzzer's
// driver is started from there (LLVMFuzzerRunDriver) instead of its own main().
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

@_cdecl("FuzzUDPReceive_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) }
}
