import ArgumentParser
import EdgeRuntime
import FleetCore
import Foundation
import GRDB

/// Drives the telemetry buffer and uploader from outside the test process: the benchmark in
/// `benchmarks/telemetry/` and the kill -9 tests run it as a child process.
@main
struct TelemetryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telemetry-bench",
        abstract: "Measure and exercise the telemetry buffer and uploader.",
        subcommands: [Ingest.self, SQLiteFloor.self, Upload.self])
}

/// A record whose data JSON is `size` bytes: a small inference-like object padded with random hex.
func sampleEntry(_ n: Int, size: Int) -> TelemetryEntry {
    let head = "{\"input\":[5.1,3.5,1.4,0.2],\"latencyMs\":1.25,\"n\":\(n),\"output\":\"setosa\",\"pad\":\"\"}"
    let pad = String((0..<max(size - head.utf8.count, 0)).map { _ in "0123456789abcdef".randomElement()! })
    return TelemetryEntry(
        module: "iris", kind: .inference,
        data: .object([
            "input": .array([.number(5.1), .number(3.5), .number(1.4), .number(0.2)]), "latencyMs": .number(1.25),
            "n": .number(Double(n)), "output": .string("setosa"), "pad": .string(pad),
        ]))
}

/// Prints one JSON object on standard output: the result the benchmark script collects.
func report(_ fields: [String: JSONValue]) throws {
    FileHandle.standardOutput.write(try FleetJSON.encode(JSONValue.object(fields)) + Data("\n".utf8))
}

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append records durably from concurrent producers and report records/s.")

    @Option(help: "The buffer's SQLite file.") var db: String
    @Option(help: "Records to append in total.") var records = 20_000
    @Option(help: "Concurrent producers, each awaiting its own appends.") var concurrency = 1
    @Option(help: "Records per append call (1 = one record per acknowledgement).") var batch = 1
    @Option(help: "Bytes of JSON data per record.") var size = 200
    @Flag(help: "Print 'ack SEQ' for every acknowledged record, as it is acknowledged.") var printAcks = false

    func run() async throws {
        let buffer = try TelemetryBuffer(
            path: db, deviceId: "bench", limits: TelemetryBufferLimits(maxRecords: Int.max, maxBytes: Int.max))
        let perProducer = records / concurrency
        let template = (0..<4096).map { sampleEntry($0, size: size) }
        let printAcks = printAcks
        let batch = batch
        let start = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var done = 0
                    var latencies: [Double] = []
                    while done < perProducer {
                        let count = min(batch, perProducer - done)
                        let entries = (0..<count).map { template[(done + $0) % template.count] }
                        let called = ContinuousClock.now
                        let seqs = try await buffer.append(contentsOf: entries)
                        latencies.append((ContinuousClock.now - called).seconds)
                        if printAcks {
                            FileHandle.standardOutput.write(Data(seqs.map { "ack \($0)\n" }.joined().utf8))
                        }
                        done += count
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: [Double]()) { $0 += $1 }.sorted()
        }
        let seconds = (ContinuousClock.now - start).seconds
        let total = perProducer * concurrency
        try report([
            "test": .string("ingest"), "records": .number(Double(total)), "concurrency": .number(Double(concurrency)),
            "batch": .number(Double(batch)), "seconds": .number(seconds), "recordsPerSecond": .number(Double(total) / seconds),
            "appendP50Microseconds": .number(latencies[latencies.count / 2] * 1e6),
            "appendP99Microseconds": .number(latencies[latencies.count * 99 / 100] * 1e6),
        ])
    }
}

struct SQLiteFloor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sqlite-floor",
        abstract: "Raw SQLite: batched inserts of the same rows in one process (WAL, synchronous=FULL).")

    @Option(help: "A scratch SQLite file.") var db: String
    @Option(help: "Rows to insert.") var records = 200_000
    @Option(help: "Rows per transaction.") var batch = 1_000
    @Option(help: "Bytes of JSON data per row.") var size = 200

    func run() throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: db, configuration: configuration)
        try pool.write { db in
            try db.execute(sql: "CREATE TABLE record (seq INTEGER PRIMARY KEY, ts DOUBLE, module TEXT, kind TEXT, data BLOB, size INTEGER)")
        }
        let encoder = FleetJSON.encoder()
        let rows = try (0..<4096).map { try encoder.encode(sampleEntry($0, size: size).data) }
        let start = ContinuousClock.now
        var seq: Int64 = 0
        while seq < Int64(records) {
            let first = seq + 1
            let last = seq + Int64(batch)
            try pool.write { db in
                let insert = try db.cachedStatement(sql: "INSERT INTO record VALUES (?, ?, ?, ?, ?, ?)")
                for row in first...last {
                    let data = rows[Int(row) % rows.count]
                    try insert.execute(arguments: [row, Date().timeIntervalSince1970, "iris", "inference", data, data.count + 4])
                }
            }
            seq = last
        }
        let seconds = (ContinuousClock.now - start).seconds
        try report([
            "test": .string("sqlite-floor"), "records": .number(Double(seq)), "batch": .number(Double(batch)),
            "seconds": .number(seconds), "recordsPerSecond": .number(Double(seq) / seconds),
        ])
    }
}

struct Upload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Upload everything buffered to a store and report records/s, MB/s and the compression ratio.")

    @Option(help: "The buffer's SQLite file.") var db: String
    @Option(help: "The device id the buffer belongs to.") var deviceId = "bench"
    @Option(help: "s3://BUCKET/PREFIX or file:///folder.") var storage: String
    @Option(help: "S3 endpoint URL.") var endpoint: String?
    @Option(help: "S3 signing region.") var region: String?
    @Option(help: "AWS shared-credentials file.") var credentials: String?
    @Option(help: "Records per object.") var batchRecords = 10_000
    @Flag(help: "Print 'object KEY' for every object the store acknowledged, as it is acknowledged.") var printObjects = false

    func run() async throws {
        let buffer = try TelemetryBuffer(
            path: db, deviceId: deviceId, limits: TelemetryBufferLimits(maxRecords: Int.max, maxBytes: Int.max))
        let settings = StorageSettings(url: storage, endpoint: endpoint, region: region, credentialsFile: credentials)
        let uploader = TelemetryUploader(buffer: buffer, destination: try settings.destination(), batchRecords: batchRecords)
        let start = ContinuousClock.now
        var objects = 0
        while try await uploader.uploadNextBatch() {
            objects += 1
            if printObjects, let key = await uploader.status.lastObjectKey {
                FileHandle.standardOutput.write(Data("object \(key)\n".utf8))
            }
        }
        let seconds = (ContinuousClock.now - start).seconds
        let status = await uploader.status
        try report([
            "test": .string("upload"), "objects": .number(Double(objects)), "records": .number(Double(status.recordsUploaded)),
            "seconds": .number(seconds), "recordsPerSecond": .number(Double(status.recordsUploaded) / seconds),
            "compressedMBPerSecond": .number(Double(status.compressedBytes) / 1e6 / seconds),
            "uncompressedMBPerSecond": .number(Double(status.uncompressedBytes) / 1e6 / seconds),
            "compressionRatio": .number(Double(status.uncompressedBytes) / Double(max(status.compressedBytes, 1))),
        ])
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
