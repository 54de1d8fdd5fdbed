import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// The buffer against real SQLite files in temporary folders.
@Suite struct TelemetryBufferTests {
    static func entry(_ n: Int, module: String = "iris", at ts: Date = Date()) -> TelemetryEntry {
        TelemetryEntry(ts: ts, module: module, kind: .custom, data: .object(["n": .number(Double(n))]))
    }

    @Test func concurrentAppendsGetGapFreeSequenceNumbersAndSurviveReopening() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("telemetry.sqlite")
        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
        let seqs = try await withThrowingTaskGroup(of: Int64.self) { group in
            for n in 0..<200 {
                group.addTask { try await buffer.append(Self.entry(n)) }
            }
            return try await group.reduce(into: [Int64]()) { $0.append($1) }
        }
        #expect(seqs.sorted() == Array(1...200))

        let reopened = try TelemetryBuffer(path: path, deviceId: "gw-001")
        let records = try reopened.readRecords(in: 1...Int64.max, limit: nil)
        #expect(records.map(\.seq) == Array(1...200))
        #expect(Set(records.map(\.data)) == Set((0..<200).map { JSONValue.object(["n": .number(Double($0))]) }))
        #expect(records.allSatisfy { $0.deviceId == "gw-001" && $0.module == "iris" && $0.kind == .custom })
        #expect(try reopened.stats().buffered == 200)
        #expect(try await reopened.append(Self.entry(200)) == 201)
    }

    @Test func aFullBufferDropsTheOldestAndCountsThem() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("telemetry.sqlite")
        let buffer = try TelemetryBuffer(
            path: path, deviceId: "gw-001", limits: TelemetryBufferLimits(maxRecords: 100, maxBytes: 1 << 30))
        try await buffer.append(contentsOf: (1...150).map { Self.entry($0) })
        try await buffer.append(Self.entry(151))

        let stats = try buffer.stats()
        #expect(stats.buffered == 100)
        #expect(stats.droppedFull == 51)
        #expect(stats.droppedExpired == 0)
        #expect(try buffer.readRecords(in: 1...Int64.max, limit: nil).map(\.seq) == Array(52...151))

        let reopened = try TelemetryBuffer(path: path, deviceId: "gw-001", limits: buffer.limits)
        #expect(try reopened.stats().droppedFull == 51)
    }

    @Test func theByteCapDropsTheOldestToo() async throws {
        let folder = try TemporaryDirectory()
        let buffer = try TelemetryBuffer(
            path: folder.file("telemetry.sqlite"), deviceId: "gw-001",
            limits: TelemetryBufferLimits(maxRecords: 1_000, maxBytes: 1_000))
        // Each record is "iris" (4 bytes) + {"n":N} (7 to 9 bytes).
        try await buffer.append(contentsOf: (1...200).map { Self.entry($0) })
        let stats = try buffer.stats()
        #expect(stats.bufferedBytes <= 1_000)
        #expect(stats.bufferedBytes > 1_000 - 13)
        #expect(stats.droppedFull == Int64(200 - stats.buffered))
        #expect(try buffer.readRecords(in: 1...Int64.max, limit: 1).first?.seq == Int64(200 - stats.buffered + 1))
    }

    @Test func recordsOlderThanTheTimeToLiveExpireAndAreCounted() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("telemetry.sqlite")
        let limits = TelemetryBufferLimits(ttlSeconds: 3600)
        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001", limits: limits)
        let now = Date()
        try await buffer.append(contentsOf: (1...30).map { Self.entry($0, at: now.addingTimeInterval(-7200)) })
        try await buffer.append(contentsOf: (31...40).map { Self.entry($0, at: now) })

        #expect(try await buffer.expire(now: now) == 30)
        #expect(try await buffer.expire(now: now) == 0)
        let stats = try buffer.stats()
        #expect(stats.buffered == 10)
        #expect(stats.droppedExpired == 30)
        #expect(abs(try #require(stats.oldestAge(now: now))) < 0.001)
        #expect(try TelemetryBuffer(path: path, deviceId: "gw-001", limits: limits).stats().droppedExpired == 30)
    }

    @Test func aPlannedBatchKeepsItsBoundsUntilAcknowledgedEvenAcrossRestarts() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("telemetry.sqlite")
        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
        try await buffer.append(contentsOf: (1...5).map { Self.entry($0) })
        let planned = try #require(try await buffer.nextBatch(maxRecords: 10))
        #expect(planned.firstSeq == 1 && planned.lastSeq == 5)

        // More records arrive, then the process dies before acknowledging.
        try await buffer.append(contentsOf: (6...20).map { Self.entry($0) })
        let reopened = try TelemetryBuffer(path: path, deviceId: "gw-001")
        let again = try #require(try await reopened.nextBatch(maxRecords: 10))
        #expect(again == planned)
        #expect(again.objectKey(prefix: "fleet/", deviceId: "gw-001") == planned.objectKey(prefix: "fleet", deviceId: "gw-001"))

        try await reopened.acknowledge(again)
        let next = try #require(try await reopened.nextBatch(maxRecords: 10))
        #expect(next.firstSeq == 6 && next.lastSeq == 15)
        let stats = try reopened.stats()
        #expect(stats.uploaded == 5 && stats.buffered == 15)
    }

    @Test func batchLinesAreExactlyTheContractEncodingOfTheRecords() async throws {
        let folder = try TemporaryDirectory()
        let buffer = try TelemetryBuffer(path: folder.file("telemetry.sqlite"), deviceId: "gw-\"001\"")
        let start = Date(timeIntervalSince1970: 1_764_028_800.75)
        try await buffer.append(contentsOf: [
            TelemetryEntry(ts: start, module: "iris", kind: .inference, data: .object(["b": .array([.number(1.5), .null]), "a": .string("x/y")])),
            TelemetryEntry(ts: start.addingTimeInterval(0.5), module: "caf\u{e9} \"quoted\"", kind: .custom, data: .number(3)),
            TelemetryEntry(ts: start.addingTimeInterval(2), module: "iris", kind: .metric, data: .object([:])),
        ])
        let batch = try #require(try await buffer.nextBatch(maxRecords: 10))
        var expected = Data()
        for record in try buffer.readRecords(in: 1...3, limit: nil) {
            expected.append(try FleetJSON.encode(record) + Data("\n".utf8))
        }
        #expect(String(decoding: batch.lines, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        #expect(try batch.records().map(\.module) == ["iris", "caf\u{e9} \"quoted\"", "iris"])
        #expect(batch.count == 3)
    }

    @Test func sequenceNumbersNeverRepeatAfterTheBufferEmpties() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("telemetry.sqlite")
        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
        try await buffer.append(contentsOf: (1...3).map { Self.entry($0) })
        try await buffer.acknowledge(try #require(try await buffer.nextBatch(maxRecords: 10)))
        #expect(try buffer.stats().buffered == 0)
        let reopened = try TelemetryBuffer(path: path, deviceId: "gw-001")
        #expect(try await reopened.append(Self.entry(4)) == 4)
    }

    @Test func objectKeysFollowTheContract() {
        let batch = TelemetryBatch(
            firstSeq: 101, lastSeq: 200, day: TelemetryBatch.day(of: Date(timeIntervalSince1970: 1_764_028_800)), count: 0, lines: Data())
        #expect(batch.objectKey(prefix: "fleet/telemetry", deviceId: "gw-001") == "fleet/telemetry/gw-001/2025/11/25/101-200.jsonl.gz")
        #expect(batch.objectKey(prefix: "", deviceId: "gw-001") == "gw-001/2025/11/25/101-200.jsonl.gz")
    }

    @Test func gzipRoundTrips() throws {
        let text = Data(String(repeating: "{\"n\":1}\n", count: 1000).utf8)
        let compressed = try Gzip.compress(text)
        #expect(compressed.prefix(2) == Data([0x1f, 0x8b]))
        #expect(compressed.count < text.count / 10)
        #expect(try Gzip.decompress(compressed) == text)
        #expect(throws: GzipError.self) { try Gzip.decompress(Data("not gzip".utf8)) }
    }
}
