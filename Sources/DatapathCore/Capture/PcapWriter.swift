#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What went wrong writing or reading a pcap file, and where.
public enum PcapError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `open(2)` failed for the file to be written.
    case open(path: String, errno: Int32)
    /// `write(2)` failed; the writer stops writing after the first failure.
    case write(path: String, errno: Int32)
    /// The file to be read could not be opened or read.
    case read(path: String, errno: Int32)
    /// The file does not start with a pcap magic number (pcapng is not supported).
    case notPcap(path: String, magic: UInt32)
    /// The file ends inside the header or a record that starts at `offset`.
    case truncated(path: String, offset: Int)
    /// A record's header makes no sense (`reason` says why).
    case badRecord(path: String, offset: Int, reason: String)

    public var description: String {
        switch self {
        case let .open(path, code):
            return "cannot open \(path) for writing: \(PcapError.message(code))"
        case let .write(path, code):
            return "cannot write \(path): \(PcapError.message(code))"
        case let .read(path, code):
            return "cannot read \(path): \(PcapError.message(code))"
        case let .notPcap(path, magic):
            let hex = String(magic, radix: 16)
            let hint = magic == 0x0A0D_0D0A ? " (it is pcapng; convert it with `editcap -F pcap`)" : ""
            return "\(path) is not a pcap file: magic 0x\(hex)\(hint)"
        case let .truncated(path, offset):
            return "\(path) is truncated: it ends inside the header or record at byte \(offset)"
        case let .badRecord(path, offset, reason):
            return "\(path) has a bad record at byte \(offset): \(reason)"
        }
    }

    static func message(_ code: Int32) -> String { String(cString: strerror(code)) }
}

// The writer's own `write` and `close` shadow the C functions inside the class.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int { write(fd, bytes, count) }
private func systemRead(_ fd: Int32, _ bytes: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, bytes, count) }
private func systemClose(_ fd: Int32) { _ = close(fd) }

/// Writes frames to a classic pcap file that tcpdump, tshark and Wireshark read (the file
/// format of libpcap's `pcap_dump`; smoltcp's `phy/pcap_writer.rs` plays the same role).
///
/// Records go into a buffer allocated once (1 MiB by default) and reach the file with one
/// `write(2)` when it fills, on `flush()` and on `close()`: writing a frame allocates nothing.
/// Frames longer than `snapLength` are cut to it, keeping their original length in the
/// record. Not thread-safe: one writer per thread, or a lock around it (as `PcapTap` does).
/// The global header is written at once, so the file is valid even with no packets. Byte
/// order is the machine's, which readers detect from the magic number.
public final class PcapWriter {
    public let path: String
    public let snapLength: UInt32
    /// The LINKTYPE_ value of the frames (1 = Ethernet).
    public let linkType: UInt32
    /// Timestamps in nanoseconds (magic 0xa1b23c4d) rather than microseconds (0xa1b2c3d4).
    public let nanosecond: Bool
    /// Records accepted so far (some may still be in the buffer until `flush`).
    public private(set) var packetsWritten = 0
    /// The first write error. After one the writer discards everything it is given.
    public private(set) var error: PcapError?

    var descriptor: Int32
    let buffer: UnsafeMutableRawPointer
    let bufferCapacity: Int
    var buffered = 0

    public static let magicMicroseconds: UInt32 = 0xA1B2_C3D4
    public static let magicNanoseconds: UInt32 = 0xA1B2_3C4D
    static let globalHeaderSize = 24
    static let recordHeaderSize = 16

    /// Creates (or truncates) `path` and writes the pcap global header. Throws
    /// `PcapError.open` or `.write`.
    public init(path: String, snapLength: UInt32 = 65535, linkType: UInt32 = 1,
                nanosecond: Bool = true, bufferSize: Int = 1 << 20) throws {
        self.path = path
        self.snapLength = max(snapLength, 1)
        self.linkType = linkType
        self.nanosecond = nanosecond
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PcapError.open(path: path, errno: errno) }
        descriptor = fd
        bufferCapacity = max(bufferSize, 4096)
        buffer = .allocate(byteCount: bufferCapacity, alignment: 64)

        let header = buffer
        header.storeBytes(of: nanosecond ? PcapWriter.magicNanoseconds : PcapWriter.magicMicroseconds, as: UInt32.self)
        header.storeBytes(of: 2 as UInt16, toByteOffset: 4, as: UInt16.self)   // version 2.4
        header.storeBytes(of: 4 as UInt16, toByteOffset: 6, as: UInt16.self)
        header.storeBytes(of: 0 as Int32, toByteOffset: 8, as: Int32.self)     // thiszone: UTC
        header.storeBytes(of: 0 as UInt32, toByteOffset: 12, as: UInt32.self)  // sigfigs
        header.storeBytes(of: self.snapLength, toByteOffset: 16, as: UInt32.self)
        header.storeBytes(of: linkType, toByteOffset: 20, as: UInt32.self)
        buffered = PcapWriter.globalHeaderSize
        flush()
        if let error {
            close()
            throw error
        }
    }

    deinit {
        close()
        buffer.deallocate()
    }

    /// Appends one frame: `length` bytes at `bytes` (cut to `snapLength`), which were
    /// `originalLength` bytes on the wire, seen at `timestampNanoseconds` (since the Unix epoch
    /// for files other tools will show; any origin works for the format).
    public func write(_ bytes: UnsafeRawPointer, length: Int, originalLength: Int, timestampNanoseconds: UInt64) {
        guard descriptor >= 0, error == nil else { return }
        let captured = min(max(length, 0), Int(snapLength))
        let recordSize = PcapWriter.recordHeaderSize &+ captured
        if buffered &+ recordSize > bufferCapacity {
            flush()
            guard error == nil else { return }
        }
        let seconds = timestampNanoseconds / 1_000_000_000
        let fraction = timestampNanoseconds % 1_000_000_000
        let record = buffer + buffered
        record.storeBytes(of: UInt32(truncatingIfNeeded: seconds), as: UInt32.self)
        record.storeBytes(of: UInt32(truncatingIfNeeded: nanosecond ? fraction : fraction / 1000),
                          toByteOffset: 4, as: UInt32.self)
        record.storeBytes(of: UInt32(truncatingIfNeeded: captured), toByteOffset: 8, as: UInt32.self)
        record.storeBytes(of: UInt32(clamping: max(originalLength, captured)), toByteOffset: 12, as: UInt32.self)
        buffered &+= PcapWriter.recordHeaderSize
        if recordSize <= bufferCapacity {
            (buffer + buffered).copyMemory(from: bytes, byteCount: captured)
            buffered &+= captured
        } else {
            // Bigger than the whole buffer (a huge snapLength): header, then the data directly.
            flush()
            if error == nil { writeAll(bytes, count: captured) }
        }
        packetsWritten &+= 1
    }

    /// Writes buffered records to the file.
    public func flush() {
        guard descriptor >= 0, buffered > 0 else { return }
        if error == nil { writeAll(buffer, count: buffered) }
        buffered = 0
    }

    /// Flushes and closes the file. Safe to call more than once; `deinit` calls it.
    public func close() {
        guard descriptor >= 0 else { return }
        flush()
        systemClose(descriptor)
        descriptor = -1
    }

    func writeAll(_ bytes: UnsafeRawPointer, count: Int) {
        var done = 0
        while done < count {
            let n = systemWrite(descriptor, bytes + done, count - done)
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                error = .write(path: path, errno: n < 0 ? errno : EIO)
                return
            }
        }
    }
}

/// One record of a pcap file: capture time in nanoseconds, length on the wire, captured bytes.
public typealias PcapRecord = (timestamp: UInt64, originalLength: Int, data: [UInt8])

/// Reads a whole classic pcap file, in either byte order and either timestamp resolution
/// (for tests and tools; captures are small). A truncated or malformed file is a thrown
/// `PcapError`, never a crash.
public struct PcapReader {
    public let snapLength: UInt32
    public let linkType: UInt32
    public let nanosecond: Bool
    /// The file was written big-endian.
    public let bigEndian: Bool
    public let versionMajor: UInt16
    public let versionMinor: UInt16
    public let records: [PcapRecord]

    /// A record longer than this is taken as garbage rather than allocated.
    static let maximumRecordLength = 1 << 26

    public init(path: String) throws {
        try self.init(bytes: PcapReader.contents(of: path), path: path)
    }

    /// Parses pcap bytes already in memory; `path` only names them in errors.
    public init(bytes: [UInt8], path: String = "<memory>") throws {
        guard bytes.count >= PcapWriter.globalHeaderSize else { throw PcapError.truncated(path: path, offset: 0) }
        let little = PcapReader.load32(bytes, 0, bigEndian: false)
        switch little {
        case PcapWriter.magicMicroseconds: (bigEndian, nanosecond) = (false, false)
        case PcapWriter.magicNanoseconds: (bigEndian, nanosecond) = (false, true)
        case PcapWriter.magicMicroseconds.byteSwapped: (bigEndian, nanosecond) = (true, false)
        case PcapWriter.magicNanoseconds.byteSwapped: (bigEndian, nanosecond) = (true, true)
        default: throw PcapError.notPcap(path: path, magic: little)
        }
        let big = bigEndian
        versionMajor = PcapReader.load16(bytes, 4, bigEndian: big)
        versionMinor = PcapReader.load16(bytes, 6, bigEndian: big)
        snapLength = PcapReader.load32(bytes, 16, bigEndian: big)
        linkType = PcapReader.load32(bytes, 20, bigEndian: big)

        var records: [PcapRecord] = []
        var offset = PcapWriter.globalHeaderSize
        while offset < bytes.count {
            guard bytes.count - offset >= PcapWriter.recordHeaderSize else {
                throw PcapError.truncated(path: path, offset: offset)
            }
            let seconds = UInt64(PcapReader.load32(bytes, offset, bigEndian: big))
            let fraction = UInt64(PcapReader.load32(bytes, offset + 4, bigEndian: big))
            let captured = Int(PcapReader.load32(bytes, offset + 8, bigEndian: big))
            let original = Int(PcapReader.load32(bytes, offset + 12, bigEndian: big))
            guard captured <= PcapReader.maximumRecordLength else {
                throw PcapError.badRecord(path: path, offset: offset,
                                          reason: "captured length \(captured) is implausibly large")
            }
            guard fraction < (nanosecond ? 1_000_000_000 : 1_000_000) else {
                throw PcapError.badRecord(path: path, offset: offset,
                                          reason: "sub-second timestamp \(fraction) out of range")
            }
            let dataStart = offset + PcapWriter.recordHeaderSize
            guard bytes.count - dataStart >= captured else { throw PcapError.truncated(path: path, offset: offset) }
            let timestamp = seconds * 1_000_000_000 + (nanosecond ? fraction : fraction * 1000)
            records.append((timestamp: timestamp, originalLength: original,
                            data: Array(bytes[dataStart..<(dataStart + captured)])))
            offset = dataStart + captured
        }
        self.records = records
    }

    /// The records of the pcap file at `path`.
    public static func read(path: String) throws -> [PcapRecord] {
        try PcapReader(path: path).records
    }

    static func load32(_ bytes: [UInt8], _ offset: Int, bigEndian: Bool) -> UInt32 {
        let b0 = UInt32(bytes[offset]), b1 = UInt32(bytes[offset + 1])
        let b2 = UInt32(bytes[offset + 2]), b3 = UInt32(bytes[offset + 3])
        return bigEndian ? b0 << 24 | b1 << 16 | b2 << 8 | b3 : b3 << 24 | b2 << 16 | b1 << 8 | b0
    }

    static func load16(_ bytes: [UInt8], _ offset: Int, bigEndian: Bool) -> UInt16 {
        let b0 = UInt16(bytes[offset]), b1 = UInt16(bytes[offset + 1])
        return bigEndian ? b0 << 8 | b1 : b1 << 8 | b0
    }

    static func contents(of path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PcapError.read(path: path, errno: errno) }
        defer { systemClose(fd) }
        var bytes: [UInt8] = []
        let chunk = 1 << 16
        while true {
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            let n = bytes.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress! + start, chunk) }
            if n < 0 {
                if errno == EINTR { bytes.removeLast(chunk); continue }
                throw PcapError.read(path: path, errno: errno)
            }
            bytes.removeLast(chunk - n)
            if n == 0 { return bytes }
        }
    }
}
