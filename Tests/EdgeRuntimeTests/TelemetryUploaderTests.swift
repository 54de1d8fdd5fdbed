import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// The uploader against a real folder and a real SeaweedFS; objects are read back independently
/// (Foundation + zlib for folders, boto3 + Python's gzip for S3) and every record is compared.
@Suite struct TelemetryUploaderTests {
    static func entries(_ range: ClosedRange<Int>) -> [TelemetryEntry] {
        range.map { n in
            TelemetryEntry(module: n % 2 == 0 ? "iris" : "resnet", kind: .inference, data: .object(["n": .number(Double(n))]))
        }
    }

    /// Parses JSON-lines objects into records, keyed by the object they came from.
    static func records(in objects: [String: String]) throws -> [String: [TelemetryRecord]] {
        try objects.mapValues { text in
            try text.split(separator: "\n").map { try FleetJSON.decode(TelemetryRecord.self, from: Data($0.utf8)) }
        }
    }

    /// Every record appears exactly once, with the data appended under its seq, in objects named by their range.
    static func expectExactlyOnce(
        _ objects: [String: [TelemetryRecord]], seqs: ClosedRange<Int64>, prefix: String, buffer identity: String
    ) {
        let all = objects.values.flatMap { $0 }.sorted { $0.seq < $1.seq }
        #expect(all.map(\.seq) == Array(seqs))
        for record in all {
            #expect(record.data == .object(["n": .number(Double(record.seq))]))
            #expect(record.deviceId == "gw-001")
        }
        for (key, records) in objects {
            let name = "\(identity)-\(records.first!.seq)-\(records.last!.seq).jsonl.gz"
            #expect(key.hasPrefix(prefix + "gw-001/") && key.hasSuffix("/" + name), "object \(key) holds \(name)")
        }
    }

    @Test func uploadsToAFolderInSeqOrderAndEmptiesTheBuffer() async throws {
        let folder = try TemporaryDirectory()
        let buffer = try TelemetryBuffer(path: folder.file("telemetry.sqlite"), deviceId: "gw-001")
        try await buffer.append(contentsOf: Self.entries(1...2500))
        let destination = try StorageSettings(url: "file://\(folder.file("store"))").destination()
        let uploader = TelemetryUploader(buffer: buffer, destination: destination, batchRecords: 1000)

        #expect(try await uploader.uploadAll() == 3)

        var objects: [String: String] = [:]
        let root = URL(fileURLWithPath: folder.file("store"))
        for case let file as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
        where file.pathExtension == "gz" {
            let key = String(file.path.dropFirst(root.path.count + 1))
            objects[key] = String(decoding: try Gzip.decompress(Data(contentsOf: file)), as: UTF8.self)
        }
        let day = TelemetryBatch.day(of: Date())
        let id = buffer.identity
        #expect(Set(objects.keys) == [
            "gw-001/\(day)/\(id)-1-1000.jsonl.gz", "gw-001/\(day)/\(id)-1001-2000.jsonl.gz", "gw-001/\(day)/\(id)-2001-2500.jsonl.gz",
        ])
        Self.expectExactlyOnce(try Self.records(in: objects), seqs: 1...2500, prefix: "", buffer: id)
        let stats = try buffer.stats()
        #expect(stats.buffered == 0 && stats.uploaded == 2500)
        let status = await uploader.status
        #expect(status.recordsUploaded == 2500 && status.objectsUploaded == 3 && status.lastError == nil)
    }

    @Test(.enabled(if: SeaweedFS.shouldRun), .timeLimit(.minutes(1)))
    func offlineThenOnlineEverythingArrivesExactlyOnce() async throws {
        let seaweed = try await SeaweedFS.start()
        defer { seaweed.stop() }
        try await seaweed.createBucket("telemetry")
        let folder = try TemporaryDirectory()
        try seaweed.writeCredentialsFile(to: folder.file("credentials"))
        let buffer = try TelemetryBuffer(path: folder.file("telemetry.sqlite"), deviceId: "gw-001")
        let settings = StorageSettings(
            url: "s3://telemetry/fleet", endpoint: seaweed.endpoint, region: seaweed.region,
            credentialsFile: folder.file("credentials"))
        let uploader = TelemetryUploader(
            buffer: buffer, destination: try settings.destination(), batchRecords: 300, pollSeconds: 0.05,
            backOff: BackoffSchedule(initial: .milliseconds(50), maximum: .milliseconds(200)))

        seaweed.stop()
        let running = Task { await uploader.run() }
        defer { running.cancel() }
        for round in 0..<5 {
            try await buffer.append(contentsOf: Self.entries(round * 200 + 1...round * 200 + 200))
            try await Task.sleep(for: .milliseconds(100))
        }
        let offline = await uploader.status
        #expect(offline.lastError?.contains("cannot reach") == true)
        #expect(offline.consecutiveFailures > 1)
        #expect(try buffer.stats().buffered == 1000)

        try await seaweed.restart()
        try await buffer.append(contentsOf: Self.entries(1001...1100))
        #expect(try await eventually { try buffer.stats().buffered == 0 }, "the buffer did not drain after storage returned")
        running.cancel()

        Self.expectExactlyOnce(
            try Self.records(in: seaweed.gunzippedObjects(bucket: "telemetry", prefix: "fleet/")), seqs: 1...1100,
            prefix: "fleet/", buffer: buffer.identity)
        #expect(try buffer.stats().uploaded == 1100)
        #expect(await uploader.status.lastError == nil)
    }

    @Test(.enabled(if: SeaweedFS.shouldRun), .timeLimit(.minutes(1)))
    func wrongCredentialsOrAMissingBucketAreReportedAndTheDataStays() async throws {
        let seaweed = try await SeaweedFS.start()
        defer { seaweed.stop() }
        try await seaweed.createBucket("telemetry")
        let folder = try TemporaryDirectory()
        try seaweed.writeCredentialsFile(to: folder.file("wrong"), secret: "not-the-secret")
        try seaweed.writeCredentialsFile(to: folder.file("right"))
        let buffer = try TelemetryBuffer(path: folder.file("telemetry.sqlite"), deviceId: "gw-001")
        try await buffer.append(contentsOf: Self.entries(1...50))

        let wrongSecret = TelemetryUploader(
            buffer: buffer,
            destination: try StorageSettings(
                url: "s3://telemetry/fleet", endpoint: seaweed.endpoint, credentialsFile: folder.file("wrong")
            ).destination())
        await #expect {
            try await wrongSecret.uploadNextBatch()
        } throws: { error in
            guard case ObjectStoreError.accessDenied(let code, _, _) = error else { return false }
            return code == "SignatureDoesNotMatch"
        }
        #expect(await wrongSecret.status.lastError?.contains("check aws_access_key_id and aws_secret_access_key") == true)

        let missingBucket = TelemetryUploader(
            buffer: buffer,
            destination: try StorageSettings(
                url: "s3://no-such-bucket/fleet", endpoint: seaweed.endpoint, credentialsFile: folder.file("right")
            ).destination())
        await #expect(throws: ObjectStoreError.noSuchBucket(bucket: "no-such-bucket", location: "s3://no-such-bucket at \(seaweed.endpoint)")) {
            try await missingBucket.uploadNextBatch()
        }
        #expect(await missingBucket.status.lastError?.contains("bucket 'no-such-bucket' does not exist") == true)
        #expect(try buffer.stats().buffered == 50)
        #expect(try seaweed.gunzippedObjects(bucket: "telemetry", prefix: "").isEmpty)
    }

    @Test(.enabled(if: SeaweedFS.shouldRun), .timeLimit(.minutes(1)))
    func aBatchStoredButNotAcknowledgedIsRewrittenUnderTheSameKey() async throws {
        let seaweed = try await SeaweedFS.start()
        defer { seaweed.stop() }
        try await seaweed.createBucket("telemetry")
        let folder = try TemporaryDirectory()
        try seaweed.writeCredentialsFile(to: folder.file("credentials"))
        let path = folder.file("telemetry.sqlite")
        let destination = try StorageSettings(
            url: "s3://telemetry/fleet", endpoint: seaweed.endpoint, credentialsFile: folder.file("credentials")
        ).destination()
        do {
            // The process that crashes: it stores the batch, then dies before deleting it from the buffer.
            let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
            try await buffer.append(contentsOf: Self.entries(1...150))
            let batch = try #require(try await buffer.nextBatch(maxRecords: 100))
            try await destination.store.put(
                key: batch.objectKey(prefix: destination.prefix, deviceId: "gw-001"), data: batch.object,
                contentType: "application/gzip")
            try await buffer.append(contentsOf: Self.entries(151...170))
        }
        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
        try await TelemetryUploader(buffer: buffer, destination: destination, batchRecords: 100).uploadAll()

        let objects = try Self.records(in: seaweed.gunzippedObjects(bucket: "telemetry", prefix: "fleet/"))
        let id = buffer.identity
        #expect(Set(objects.keys.map { $0.split(separator: "/").last! }) == ["\(id)-1-100.jsonl.gz", "\(id)-101-170.jsonl.gz"])
        Self.expectExactlyOnce(objects, seqs: 1...170, prefix: "fleet/", buffer: id)
    }

    @Test(.enabled(if: SeaweedFS.shouldRun), .timeLimit(.minutes(1)))
    func killingTheUploaderMidwayLosesAndDuplicatesNothing() async throws {
        let seaweed = try await SeaweedFS.start()
        defer { seaweed.stop() }
        let folder = try TemporaryDirectory()
        let buffer = try await InterruptedUpload.run(Self.entries(1...20_000), seaweed: seaweed, folder: folder)

        Self.expectExactlyOnce(
            try Self.records(in: seaweed.gunzippedObjects(bucket: "telemetry", prefix: "fleet/")), seqs: 1...20_000,
            prefix: "fleet/", buffer: buffer.identity)
    }
}
