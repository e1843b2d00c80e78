import DatapathCore
#if canImport(Glibc)
import Glibc
#endif

/// The fuzz harness for pcap (issue #13: "pcap writing"), two ways by the input's first byte:
///
/// - even: a round trip. The byte also picks the snap length (bits 1–3: 1 << (4 + n) bytes,
///   16…2 048), the timestamp unit (bit 4: microseconds) and the writer's buffer (bit 5: its
///   4 096-byte minimum, so records flush, and some outgrow it). Then records of
///   `[length: 2][original: 2][time: 4]` (big-endian; the frame's bytes come from the input
///   after them, repeated as needed). The file written is read back with `PcapReader`: every
///   record must come back cut to the snap length, with its original length and its
///   timestamp (to the microsecond in a microsecond file), byte for byte.
/// - odd: the rest of the input is a pcap file given to `PcapReader`, which must parse it or
///   throw — never trap — and, when it parses, account for every byte.
public enum PcapHarness {
    static let path = "/tmp/datapath-fuzz-pcap-\(getpid()).pcap"

    public static func run(_ input: UnsafeRawBufferPointer) {
        guard let mode = input.first else { return }
        let rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        if mode & 1 == 1 {
            if let reader = try? PcapReader(bytes: Array(rest)) {
                let accounted = 24 + reader.records.reduce(0) { $0 + 16 + $1.data.count }
                precondition(accounted == rest.count, "the reader skipped bytes: \(accounted) of \(rest.count)")
            }
            return
        }
        let snap = UInt32(1) << (4 + UInt32((mode >> 1) & 7))
        let microseconds = mode & 0x10 != 0
        guard let writer = try? PcapWriter(path: path, snapLength: snap, nanosecond: !microseconds,
                                           bufferSize: mode & 0x20 != 0 ? 4096 : 1 << 20) else {
            preconditionFailure("cannot write \(path)")
        }
        var expected: [(data: [UInt8], original: Int, time: UInt64)] = []
        var offset = 0
        let bytes = Array(rest)
        while offset + 8 <= bytes.count, expected.count < 64 {
            let length = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
            let original = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let time = UInt64(bytes[offset + 4]) << 24 | UInt64(bytes[offset + 5]) << 16
                | UInt64(bytes[offset + 6]) << 8 | UInt64(bytes[offset + 7])
            offset += 8
            // Nanoseconds spread over seconds and their fractions (seconds within 32 bits).
            let timestamp = (time & 0x0FFF_FFFF) &* 1_000_003_001
            let source = bytes[offset...]
            let frame = (0..<length).map { source.isEmpty ? UInt8(truncatingIfNeeded: $0) : source[source.startIndex + $0 % source.count] }
            frame.withUnsafeBytes { writer.write($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, length: length,
                                                originalLength: original, timestampNanoseconds: timestamp) }
            let captured = min(length, Int(snap))
            expected.append((Array(frame.prefix(captured)), max(original, captured),
                             microseconds ? timestamp / 1000 * 1000 : timestamp))
        }
        writer.close()
        precondition(writer.error == nil, "the writer failed: \(String(describing: writer.error))")
        precondition(writer.packetsWritten == expected.count, "records written \(writer.packetsWritten) of \(expected.count)")
        guard let reader = try? PcapReader(path: path) else { preconditionFailure("what the writer wrote does not parse") }
        precondition(reader.snapLength == snap && reader.nanosecond == !microseconds, "the file header changed")
        precondition(reader.records.count == expected.count, "\(reader.records.count) records read of \(expected.count)")
        for (record, want) in zip(reader.records, expected) {
            precondition(record.data == want.data, "a record's bytes changed")
            precondition(record.originalLength == want.original, "a record's original length changed")
            precondition(record.timestamp == want.time, "a record's timestamp changed")
        }
    }
}
