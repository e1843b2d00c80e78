import Foundation
import Testing
@testable import DatapathCore

private func temporaryPcapPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).pcap").path
}

private func fileBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// An Ethernet-looking frame of `length` bytes whose content depends on `seed`.
private func sampleFrame(length: Int, seed: UInt8) -> [UInt8] {
    (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7) &+ seed }
}

private func write(_ frame: [UInt8], to writer: PcapWriter, originalLength: Int? = nil, at timestamp: UInt64) {
    frame.withUnsafeBytes {
        writer.write($0.baseAddress!, length: frame.count, originalLength: originalLength ?? frame.count,
                     timestampNanoseconds: timestamp)
    }
}

private let tsharkPath = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

@Suite struct PcapWriterTests {
    @Test func globalHeaderBytesAreExact() throws {
        let nanoPath = temporaryPcapPath("header-ns")
        let microPath = temporaryPcapPath("header-us")
        defer { try? FileManager.default.removeItem(atPath: nanoPath); try? FileManager.default.removeItem(atPath: microPath) }
        try PcapWriter(path: nanoPath).close()
        try PcapWriter(path: microPath, snapLength: 256, linkType: 101, nanosecond: false).close()
        // Little-endian host: magic, version 2.4, thiszone 0, sigfigs 0, snaplen, linktype.
        #expect(try fileBytes(nanoPath) == [0x4D, 0x3C, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0xFF, 0xFF, 0, 0, 1, 0, 0, 0])
        #expect(try fileBytes(microPath) == [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             0, 1, 0, 0, 101, 0, 0, 0])
    }

    @Test func framesRoundTripWithSnapLengthApplied() throws {
        let path = temporaryPcapPath("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, snapLength: 100)
        let frames = [sampleFrame(length: 60, seed: 1), sampleFrame(length: 150, seed: 2), sampleFrame(length: 100, seed: 3)]
        let times: [UInt64] = [1_700_000_000_123_456_789, 1_700_000_001_000_000_001, 5]
        for (frame, time) in zip(frames, times) { write(frame, to: writer, at: time) }
        write(sampleFrame(length: 64, seed: 4), to: writer, originalLength: 1514, at: 6)   // already cut by the caller
        #expect(writer.packetsWritten == 4)
        writer.close()
        writer.close()   // idempotent
        write(frames[0], to: writer, at: 7)   // ignored after close
        #expect(writer.packetsWritten == 4)

        let bytes = try fileBytes(path)
        // First record header: seconds, nanoseconds, captured, original (little-endian).
        #expect(Array(bytes[24..<40]) == [0x00, 0xF1, 0x53, 0x65, 0x15, 0xCD, 0x5B, 0x07, 60, 0, 0, 0, 60, 0, 0, 0])
        #expect(bytes.count == 24 + 4 * 16 + 60 + 100 + 100 + 64)

        let reader = try PcapReader(path: path)
        #expect(reader.nanosecond && !reader.bigEndian && reader.snapLength == 100 && reader.linkType == 1)
        #expect((reader.versionMajor, reader.versionMinor) == (2, 4))
        let records = reader.records
        #expect(records.count == 4)
        #expect(records.map(\.timestamp) == times + [6])
        #expect(records.map(\.originalLength) == [60, 150, 100, 1514])
        #expect(records[0].data == frames[0])
        #expect(records[1].data == Array(frames[1].prefix(100)))
        #expect(records[2].data == frames[2])
        #expect(records[3].data.count == 64)
    }

    @Test func microsecondFilesKeepMicroseconds() throws {
        let path = temporaryPcapPath("micro")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, nanosecond: false)
        write(sampleFrame(length: 42, seed: 9), to: writer, at: 12_345_678_901_234)
        writer.close()
        let records = try PcapReader.read(path: path)
        #expect(records.count == 1)
        #expect(records[0].timestamp == 12_345_678_901_000)
    }

    @Test func manyFramesThroughASmallBufferAllArrive() throws {
        let path = temporaryPcapPath("buffered")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, bufferSize: 4096)
        for i in 0..<1_000 { write(sampleFrame(length: 60 + i % 200, seed: UInt8(truncatingIfNeeded: i)), to: writer, at: UInt64(i)) }
        writer.flush()
        #expect(try PcapReader.read(path: path).count == 1_000)   // readable before close
        writer.close()
        let records = try PcapReader.read(path: path)
        #expect(records.map(\.timestamp) == (0..<1_000).map(UInt64.init))
        #expect(records[999].data == sampleFrame(length: 60 + 999 % 200, seed: UInt8(truncatingIfNeeded: 999)))
    }

    @Test func openFailureSaysWhatAndWhy() {
        let path = "/nonexistent-directory/capture.pcap"
        #expect(throws: PcapError.open(path: path, errno: ENOENT)) { try PcapWriter(path: path) }
        let error = PcapError.open(path: path, errno: ENOENT)
        #expect(error.description == "cannot open /nonexistent-directory/capture.pcap for writing: No such file or directory")
    }

    @Test func bigEndianFilesAreRead() throws {
        var bytes: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 1]
        bytes += [0, 0, 0, 3, 0, 0, 0, 250, 0, 0, 0, 4, 0, 0, 0, 60, 0xDE, 0xAD, 0xBE, 0xEF]
        let reader = try PcapReader(bytes: bytes)
        #expect(reader.bigEndian && !reader.nanosecond && reader.linkType == 1 && reader.snapLength == 65535)
        #expect(reader.records.count == 1)
        #expect(reader.records[0].timestamp == 3_000_250_000)
        #expect(reader.records[0].originalLength == 60)
        #expect(reader.records[0].data == [0xDE, 0xAD, 0xBE, 0xEF])
    }

    @Test func truncatedAndGarbageFilesThrowInsteadOfCrashing() throws {
        let path = temporaryPcapPath("valid")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path)
        write(sampleFrame(length: 60, seed: 1), to: writer, at: 1)
        write(sampleFrame(length: 70, seed: 2), to: writer, at: 2)
        writer.close()
        let valid = try fileBytes(path)
        let boundaries = [24, 24 + 16 + 60, valid.count]

        for length in 0..<valid.count {
            let prefix = Array(valid.prefix(length))
            if boundaries.contains(length) {
                #expect(throws: Never.self) { try PcapReader(bytes: prefix) }
            } else {
                #expect(throws: PcapError.self) { try PcapReader(bytes: prefix) }
            }
        }
        #expect(throws: PcapError.notPcap(path: "<memory>", magic: 0x0A0D_0D0A)) {
            try PcapReader(bytes: [0x0A, 0x0D, 0x0D, 0x0A] + Array(repeating: 0, count: 40))
        }
        #expect(throws: PcapError.self) { try PcapReader(path: "/nonexistent-directory/none.pcap") }

        // Random corruption: anything may come out, but nothing may crash.
        var seed: UInt64 = 42
        for _ in 0..<2_000 {
            var corrupt = valid
            for _ in 0..<3 {
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                corrupt[Int((seed >> 33) % UInt64(corrupt.count))] = UInt8(truncatingIfNeeded: seed >> 17)
            }
            _ = try? PcapReader(bytes: corrupt)
        }
    }

    @Test(.enabled(if: tsharkPath != nil, "tshark is not installed"))
    func tsharkReadsTheFile() throws {
        let path = temporaryPcapPath("tshark")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, snapLength: 128)
        write(sampleFrame(length: 60, seed: 1), to: writer, at: 1_700_000_000_000_000_000)
        write(sampleFrame(length: 1514, seed: 2), to: writer, at: 1_700_000_000_000_001_000)
        write(sampleFrame(length: 98, seed: 3), to: writer, at: 1_700_000_000_500_000_000)
        writer.close()

        let process = Process()
        process.executableURL = URL(fileURLWithPath: tsharkPath!)
        process.arguments = ["-r", path, "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines == ["60\t60", "1514\t128", "98\t98"])
    }
}
