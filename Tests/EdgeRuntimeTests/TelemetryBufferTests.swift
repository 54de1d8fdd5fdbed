import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import GRDB
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
        var expected = Data()
        for record in try buffer.readRecords(in: 1...3, limit: nil) {
            expected.append(try FleetJSON.encode(record) + Data("\n".utf8))
        }
        let batch = try #require(try await buffer.nextBatch(maxRecords: 10))
        #expect(String(decoding: try Gzip.decompress(batch.object), as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        #expect(batch.uncompressedBytes == expected.count)
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
            name: "00c0ffee00c0ffee-101-200", firstSeq: 101, lastSeq: 200,
            day: TelemetryBatch.day(of: Date(timeIntervalSince1970: 1_764_028_800)), count: 0, object: Data(), uncompressedBytes: 0)
        #expect(batch.objectKey(prefix: "fleet/telemetry", deviceId: "gw-001") == "fleet/telemetry/gw-001/2025/11/25/00c0ffee00c0ffee-101-200.jsonl.gz")
        #expect(batch.objectKey(prefix: "", deviceId: "gw-001") == "gw-001/2025/11/25/00c0ffee00c0ffee-101-200.jsonl.gz")
    }

    /// Limits drop the oldest records, but never those of a planned batch: its object is fixed, so a
    /// retry cannot rewrite an uploaded object with fewer records.
    @Test func limitsNeverShrinkAPlannedBatch() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("telemetry.sqlite")
        let limits = TelemetryBufferLimits(maxRecords: 10, maxBytes: 1 << 20, ttlSeconds: 86_400)
        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001", limits: limits)
        try await buffer.append(contentsOf: (1...10).map { Self.entry($0) })
        let planned = try #require(try await buffer.nextBatch(maxRecords: 5))
        #expect(try planned.records().map(\.seq) == Array(1...5))

        try await buffer.append(contentsOf: (11...20).map { Self.entry($0) })
        let stats = try buffer.stats()
        #expect(stats.buffered == 10 && stats.droppedFull == 10)
        #expect(try buffer.readRecords(in: 1...Int64.max, limit: nil).map(\.seq) == Array(16...20))

        let reopened = try TelemetryBuffer(path: path, deviceId: "gw-001", limits: limits)
        let again = try #require(try await reopened.nextBatch(maxRecords: 5))
        #expect(again == planned)
        #expect(try again.records().map(\.seq) == Array(1...5))
        #expect(try reopened.stats().buffered == 10)
        try await reopened.acknowledge(again)
        let after = try reopened.stats()
        #expect(after.buffered == 5 && after.uploaded == 5)
    }

    /// A runtime upgraded while a batch of the first schema (bounds only) was planned uploads that batch
    /// under its old key, with every record of its range, and then names new batches by identity.
    @Test func aBatchPlannedByAnOlderRuntimeKeepsItsKey() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("telemetry.sqlite")
        do {
            let old = try DatabaseQueue(path: path)
            try await old.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                        INSERT INTO grdb_migrations VALUES ('v1');
                        CREATE TABLE record (seq INTEGER PRIMARY KEY, ts DOUBLE NOT NULL, module TEXT NOT NULL,
                            kind TEXT NOT NULL, data BLOB NOT NULL, size INTEGER NOT NULL);
                        CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                        CREATE TABLE upload_plan (id INTEGER PRIMARY KEY CHECK (id = 1), firstSeq INTEGER NOT NULL,
                            lastSeq INTEGER NOT NULL, day TEXT NOT NULL);
                        INSERT INTO counter VALUES ('lastSeq', 7);
                        INSERT INTO upload_plan VALUES (1, 1, 5, '2026/11/30');
                        """)
                for seq in 1...7 {
                    let data = Data("{\"n\":\(seq)}".utf8)
                    try db.execute(
                        sql: "INSERT INTO record VALUES (?, ?, 'iris', 'custom', ?, ?)",
                        arguments: [seq, 1_764_460_800.0 + Double(seq), data, 4 + data.count])
                }
            }
            try old.close()
        }
        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
        let planned = try #require(try await buffer.nextBatch(maxRecords: 100))
        #expect(planned.objectKey(prefix: "", deviceId: "gw-001") == "gw-001/2026/11/30/1-5.jsonl.gz")
        #expect(try planned.records().map(\.seq) == Array(1...5))
        #expect(try await buffer.nextBatch(maxRecords: 100) == planned)
        try await buffer.acknowledge(planned)
        let next = try #require(try await buffer.nextBatch(maxRecords: 100))
        #expect(next.name == "\(buffer.identity)-6-7")
        #expect(try await buffer.append(Self.entry(8)) == 8)
    }

    /// A buffer made anew at the same path starts again at seq 1, under a new identity, so its objects
    /// never overwrite those of the buffer before.
    @Test func aRecreatedBufferNeverOverwritesEarlierObjects() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("telemetry.sqlite")
        let first = try TelemetryBuffer(path: path, deviceId: "gw-001")
        try await first.append(contentsOf: (1...5).map { Self.entry($0) })
        let old = try #require(try await first.nextBatch(maxRecords: 100))
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }

        let second = try TelemetryBuffer(path: path, deviceId: "gw-001")
        try await second.append(contentsOf: (1...3).map { Self.entry($0) })
        let new = try #require(try await second.nextBatch(maxRecords: 100))
        #expect(new.firstSeq == old.firstSeq)
        #expect(first.identity != second.identity)
        #expect(new.objectKey(prefix: "", deviceId: "gw-001") != old.objectKey(prefix: "", deviceId: "gw-001"))
        #expect(old.name == "\(first.identity)-1-5" && new.name == "\(second.identity)-1-3")
    }

    /// A batch holds about `maxBytes` of JSON lines at most (and at least one record, however large).
    @Test func batchesAreCappedByBytes() async throws {
        let folder = try TemporaryDirectory()
        let buffer = try TelemetryBuffer(path: folder.file("telemetry.sqlite"), deviceId: "gw-001")
        let text = String(repeating: "x", count: 10_000)
        try await buffer.append(contentsOf: (1...100).map {
            TelemetryEntry(module: "iris", kind: .custom, data: .object(["n": .number(Double($0)), "text": .string(text)]))
        })
        let batch = try #require(try await buffer.nextBatch(maxRecords: 1000, maxBytes: 50_000))
        #expect(batch.count == 5)
        #expect(batch.uncompressedBytes >= 50_000 && batch.uncompressedBytes < 60_000)
        try await buffer.acknowledge(batch)
        let single = try #require(try await buffer.nextBatch(maxRecords: 1000, maxBytes: 1_000))
        #expect(single.count == 1 && single.firstSeq == 6)
    }

    /// Compressing piece by piece gives one gzip member that any reader inflates to the whole text.
    @Test func aStreamedGzipEqualsTheText() throws {
        let stream = try GzipStream()
        var text = Data()
        for n in 0..<5_000 {
            let line = Data("{\"n\":\(n),\"pad\":\"\(String(repeating: "y", count: n % 97))\"}\n".utf8)
            text.append(line)
            try stream.append(line)
        }
        let object = try stream.finish()
        #expect(try Gzip.decompress(object) == text)
        #expect(object.count < text.count / 4)
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
