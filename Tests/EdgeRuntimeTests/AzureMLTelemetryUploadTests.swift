import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// Azure ML collections through the real buffer and uploader, mixed with the device's own
/// records: one stream per object, Azure ML's layout for the collections, and the buffer's
/// exactly-once guarantees for both, also when the uploader is killed mid-way.
@Suite struct AzureMLTelemetryUploadTests {
    /// Where record `n` belongs: the device's own records (nil) or a collection of a module.
    static func stream(_ n: Int) -> (collection: AzureMLCollection, module: String)? {
        switch n % 4 {
        case 1: (.modelInputs, "iris")
        case 2: (.modelOutputs, "iris")
        case 3: (.modelInputs, "resnet")
        default: nil
        }
    }

    /// A minute before the top of the current hour: record `n` is `n` seconds later, so the
    /// records from n = 60 on are of the next hour.
    static let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600 - 60)

    static func entries(_ range: ClosedRange<Int>) -> [TelemetryEntry] {
        range.map { n in
            TelemetryEntry(
                ts: start.addingTimeInterval(Double(n)), module: stream(n)?.module ?? "iris", kind: .inference,
                data: .object(["n": .number(Double(n))]), collection: stream(n)?.collection)
        }
    }

    /// Checks that every record of `range` is in exactly one object, in the object its stream and
    /// hour call for, and that the device's own objects are as before.
    static func expectExactlyOnce(_ objects: [String: [JSONValue]], _ range: ClosedRange<Int>, prefix: String, identity: String) {
        var seen: [Int] = []
        for (key, lines) in objects {
            let numbers = lines.compactMap { line -> Int? in
                guard case .object(let fields) = line, case .number(let n) = fields["n"] else { return nil }
                return Int(n)
            }
            #expect(numbers.count == lines.count, "\(key) holds lines without n")
            guard let first = numbers.first else { continue }
            seen += numbers
            if let target = stream(first) {
                let (collection, module) = target
                let hour = TelemetryBatch.hour(of: start.addingTimeInterval(Double(first)))
                let folder = "\(prefix)modelDataCollector/\(module)/\(collection.rawValue)/\(hour)/gw-001-\(identity)-"
                #expect(key.hasPrefix(folder) && key.hasSuffix(".jsonl"), "\(key) is not under \(folder)")
                #expect(numbers.allSatisfy { stream($0)! == (collection, module) }, "\(key) mixes streams")
                #expect(
                    numbers.allSatisfy { TelemetryBatch.hour(of: start.addingTimeInterval(Double($0))) == hour },
                    "\(key) mixes hours")
            } else {
                #expect(key.hasPrefix("\(prefix)gw-001/") && key.hasSuffix(".jsonl.gz"), "\(key)")
                #expect(numbers.allSatisfy { stream($0) == nil }, "\(key) holds a collection's records")
            }
        }
        #expect(seen.sorted() == Array(range))
    }

    /// The lines of objects read back: a `TelemetryRecord`'s data for the device's own, the JSON
    /// line for a collection's.
    static func lines(gunzipped: [String: String], plain: [String: String]) throws -> [String: [JSONValue]] {
        var objects = try gunzipped.mapValues { text in
            try text.split(separator: "\n").map { try FleetJSON.decode(TelemetryRecord.self, from: Data($0.utf8)).data }
        }
        for (key, text) in plain {
            objects[key] = try text.split(separator: "\n").map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        }
        return objects
    }

    @Test func eachObjectHoldsOneStreamAndACollectionsIsPlainJSONLinesInItsHourFolder() async throws {
        let folder = try TemporaryDirectory()
        let buffer = try TelemetryBuffer(path: folder.file("telemetry.sqlite"), deviceId: "gw-001")
        try await buffer.append(contentsOf: Self.entries(1...200))
        let destination = try StorageSettings(url: "file://\(folder.file("store"))").destination()
        let uploader = TelemetryUploader(buffer: buffer, destination: destination, batchRecords: 30)

        // Each collection (50 records, 15 before the hour) in 15 | 30 + 5; the device's own 50 in 30 + 20.
        #expect(try await uploader.uploadAll() == 11)

        var gunzipped: [String: String] = [:]
        var plain: [String: String] = [:]
        let root = URL(fileURLWithPath: folder.file("store"))
        for case let file as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
        where !file.hasDirectoryPath {
            let key = String(file.path.dropFirst(root.path.count + 1))
            if file.pathExtension == "gz" {
                gunzipped[key] = String(decoding: try Gzip.decompress(Data(contentsOf: file)), as: UTF8.self)
            } else {
                plain[key] = try String(contentsOf: file, encoding: .utf8)
            }
        }
        #expect(plain.count == 9 && gunzipped.count == 2)
        Self.expectExactlyOnce(try Self.lines(gunzipped: gunzipped, plain: plain), 1...200, prefix: "", identity: buffer.identity)
        #expect(try buffer.stats().buffered == 0 && buffer.stats().uploaded == 200)
    }

    @Test func aPlannedCollectionBatchComesBackByteForByteAfterARestart() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("telemetry.sqlite")
        let planned: TelemetryBatch
        do {
            let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
            try await buffer.append(contentsOf: Self.entries(1...40).filter { $0.collection != nil })
            planned = try #require(try await buffer.nextBatch(maxRecords: 5))
        }
        #expect(planned.collection == .modelInputs && planned.module == "iris" && planned.count == 5)
        #expect(planned.contentType == "application/x-ndjson")
        #expect(String(decoding: planned.object, as: UTF8.self).split(separator: "\n").count == 5)

        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
        try await buffer.append(contentsOf: Self.entries(41...44))
        #expect(try await buffer.nextBatch(maxRecords: 100) == planned)
        try await buffer.acknowledge(planned)
        let next = try #require(try await buffer.nextBatch(maxRecords: 100))
        #expect(next != planned && next.collection == .modelOutputs)
    }

    @Test(.enabled(if: SeaweedFS.shouldRun), .timeLimit(.minutes(1)))
    func aStoredButUnacknowledgedCollectionBatchIsRewrittenUnderTheSameKey() async throws {
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
            let batch = try #require(try await buffer.nextBatch(maxRecords: 10))
            #expect(batch.collection == .modelInputs)
            try await destination.store.put(
                key: batch.objectKey(prefix: destination.prefix, deviceId: "gw-001"), data: batch.object,
                contentType: batch.contentType)
            try await buffer.append(contentsOf: Self.entries(151...170))
        }
        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
        try await TelemetryUploader(buffer: buffer, destination: destination, batchRecords: 10).uploadAll()

        let objects = try Self.lines(
            gunzipped: seaweed.gunzippedObjects(bucket: "telemetry", prefix: "fleet/gw-001/"),
            plain: seaweed.objects(bucket: "telemetry", prefix: "fleet/modelDataCollector/"))
        Self.expectExactlyOnce(objects, 1...170, prefix: "fleet/", identity: buffer.identity)
    }

    @Test(.enabled(if: SeaweedFS.shouldRun), .timeLimit(.minutes(1)))
    func killingTheUploaderMidwayLosesAndDuplicatesNoCollectionRecord() async throws {
        let seaweed = try await SeaweedFS.start()
        defer { seaweed.stop() }
        let folder = try TemporaryDirectory()
        let buffer = try await InterruptedUpload.run(Self.entries(1...20_000), seaweed: seaweed, folder: folder)

        let objects = try Self.lines(
            gunzipped: seaweed.gunzippedObjects(bucket: "telemetry", prefix: "fleet/gw-001/"),
            plain: seaweed.objects(bucket: "telemetry", prefix: "fleet/modelDataCollector/"))
        Self.expectExactlyOnce(objects, 1...20_000, prefix: "fleet/", identity: buffer.identity)
    }
}
