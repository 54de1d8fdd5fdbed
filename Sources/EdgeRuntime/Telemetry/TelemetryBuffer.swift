import Dispatch
import FleetCore
import Foundation
import GRDB
import Synchronization

/// The device's store-and-forward buffer for telemetry (docs/contract.md): a SQLite file in WAL mode.
///
/// Durability: `append` returns only after the transaction holding the record committed with
/// `synchronous = FULL`, which in WAL mode fsyncs the WAL on every commit. A record whose append returned
/// therefore survives `kill -9` of the process and a power cut. (`NORMAL` would survive `kill -9` only: in
/// WAL mode it defers the fsync to checkpoints, so the last commits can vanish with the power.)
///
/// Throughput: one fsync costs milliseconds, so appends are group-committed. Concurrent appends queue up
/// while a commit is in progress and the next commit takes all of them in one transaction; under load one
/// fsync acknowledges as many records as arrived during the previous one. Producers that hold many records
/// at once use `append(contentsOf:)`, which commits them together.
///
/// Every write (appends, uploads acknowledged, expiry) runs on one serial queue, so the sequence numbers are
/// gap-free in commit order and the counters need no further locking. Reads for upload use WAL readers and
/// never wait for a commit.
///
/// A full disk (SQLITE_FULL) refuses new records with `TelemetryBufferError.diskFull` and counts them, and
/// frees the reserve file so that uploads can still plan and acknowledge batches; records are tried again
/// once uploads deleted rows or the disk has room for the reserve twice, so the buffer recovers by itself.
public final class TelemetryBuffer: Sendable {
    public let path: String
    public let deviceId: String
    public let limits: TelemetryBufferLimits
    /// Made once, when the buffer file is created, and part of every object name: a buffer created
    /// anew (its file deleted, a device re-imaged) starts again at seq 1 without overwriting any object
    /// of the one before.
    public let identity: String

    private let pool: DatabasePool
    /// Encodes each entry's data on the appending task, so the writer only inserts bytes.
    private let encoder = FleetJSON.encoder()
    private let writer = DispatchQueue(label: "telemetry-buffer.writer")
    private let pending = Mutex(PendingAppends())
    /// Mirrors the database; mutated only on `writer` after a commit.
    private let totals: Mutex<Totals>
    private let disk = Mutex(DiskState())
    /// The file holding `limits.reserveBytes` of disk back for uploads on a full disk.
    private var reservePath: String { path + "-reserve" }
    private var folder: String { URL(fileURLWithPath: path).deletingLastPathComponent().path }

    /// Opens (or creates) the buffer at `path`.
    public init(path: String, deviceId: String, limits: TelemetryBufferLimits = TelemetryBufferLimits()) throws {
        self.path = path
        self.deviceId = deviceId
        self.limits = limits
        var configuration = Configuration()
        // Another process (a status command, a restarted runtime while the old one is still closing) may hold
        // a lock for a moment: wait for it rather than fail.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
            let (identity, loaded) = try pool.read { db in
                (try String.fetchOne(db, sql: "SELECT bufferId FROM identity")!, try Totals.load(db))
            }
            self.identity = identity
            totals = Mutex(loaded)
        } catch {
            throw TelemetryBufferError.open(path: path, reason: "\(error)")
        }
        restoreReserve()
    }

    // MARK: Appending

    /// Stores one record durably and returns its sequence number.
    @discardableResult
    public func append(_ entry: TelemetryEntry) async throws -> Int64 {
        try await append(contentsOf: [entry]).lowerBound
    }

    /// Stores `entries` durably in one transaction and returns their sequence numbers (consecutive).
    /// `entries` must not be empty.
    @discardableResult
    public func append(contentsOf entries: [TelemetryEntry]) async throws -> ClosedRange<Int64> {
        precondition(!entries.isEmpty, "append(contentsOf:) needs at least one entry")
        let rows = try entries.map { entry in
            StoredRow(
                ts: entry.ts.timeIntervalSince1970, module: entry.module, kind: entry.kind.rawValue,
                data: try encoder.encode(entry.data), collection: entry.collection?.rawValue)
        }
        return try await withCheckedThrowingContinuation { continuation in
            let startDrain = pending.withLock { pending in
                pending.waiters.append(AppendWaiter(rows: rows, continuation: continuation))
                defer { pending.draining = true }
                return !pending.draining
            }
            if startDrain {
                writer.async { self.commitPending() }
            }
        }
    }

    /// Commits every append queued so far in one transaction, then schedules itself again so that other
    /// writes queued meanwhile (acknowledge, expire) get their turn between group commits.
    private func commitPending() {
        let waiters = pending.withLock { pending in
            let waiters = pending.waiters
            pending.waiters = []
            if waiters.isEmpty { pending.draining = false }
            return waiters
        }
        guard !waiters.isEmpty else { return }
        defer { writer.async { self.commitPending() } }
        if disk.withLock({ $0.full }), !disk.withLock({ $0.freedInside }), freeBytes() < 2 * Int64(limits.reserveBytes) {
            refuse(waiters)
            return
        }
        do {
            var next = totals.withLock { $0 }
            var ranges: [ClosedRange<Int64>] = []
            try pool.write { db in
                let insert = try db.cachedStatement(
                    sql: "INSERT INTO record (seq, ts, module, kind, data, size, collection) VALUES (?, ?, ?, ?, ?, ?, ?)")
                for waiter in waiters {
                    let first = next.lastSeq + 1
                    for row in waiter.rows {
                        next.lastSeq += 1
                        try insert.execute(
                            arguments: [next.lastSeq, row.ts, row.module, row.kind, row.data, row.size, row.collection])
                        next.count += 1
                        next.bytes += row.size
                    }
                    ranges.append(first...next.lastSeq)
                }
                try dropOldestBeyondLimits(db, &next)
                try next.saveCounters(db)
            }
            totals.withLock { $0 = next }
            disk.withLock { $0.full = false; $0.freedInside = false }
            restoreReserve()
            for (waiter, range) in zip(waiters, ranges) {
                waiter.continuation.resume(returning: range)
            }
        } catch where Self.isDiskFull(error) {
            diskFilled()
            refuse(waiters)
        } catch {
            let failure = TelemetryBufferError.write(path: path, operation: "append", reason: "\(error)")
            for waiter in waiters {
                waiter.continuation.resume(throwing: failure)
            }
        }
    }

    // MARK: Full disk

    /// Fails `waiters` with `diskFull` and counts their records as refused (on `writer`).
    private func refuse(_ waiters: [AppendWaiter]) {
        let records = waiters.reduce(0) { $0 + $1.rows.count }
        let counted = totals.withLock { totals in
            totals.refusedDiskFull += Int64(records)
            return totals
        }
        // One counter page, at most once a second, so `status` shows the refusals while the disk is full.
        if disk.withLock({ ContinuousClock.now - $0.countersSaved > .seconds(1) }) {
            disk.withLock { $0.countersSaved = ContinuousClock.now }
            try? pool.write { db in try counted.saveCounters(db) }
        }
        let failure = TelemetryBufferError.diskFull(path: path, folder: folder, freeBytes: freeBytes())
        for waiter in waiters {
            waiter.continuation.resume(throwing: failure)
        }
    }

    /// Refuses records from now on and gives the reserve to the uploads.
    private func diskFilled() {
        disk.withLock { $0.full = true; $0.freedInside = false }
        try? FileManager.default.removeItem(atPath: reservePath)
    }

    /// Writes the reserve file unless it is there, when the disk has room for it twice; a
    /// reserve that cannot be written whole is removed.
    private func restoreReserve() {
        guard limits.reserveBytes > 0, !FileManager.default.fileExists(atPath: reservePath),
            freeBytes() >= 2 * Int64(limits.reserveBytes)
        else { return }
        do {
            try Data(count: limits.reserveBytes).write(to: URL(fileURLWithPath: reservePath))
        } catch {
            try? FileManager.default.removeItem(atPath: reservePath)
        }
    }

    private func freeBytes() -> Int64 { SystemSampler.freeBytes(at: folder) ?? 0 }

    private static func isDiskFull(_ error: any Error) -> Bool {
        (error as? DatabaseError)?.resultCode == .SQLITE_FULL
    }

    /// Deletes the oldest records until the buffer is within its limits, counting them as dropped (full).
    private func dropOldestBeyondLimits(_ db: Database, _ totals: inout Totals) throws {
        while totals.count > limits.maxRecords || totals.bytes > limits.maxBytes {
            let chunk = min(max(totals.count - limits.maxRecords, 256), 10_000)
            let oldest = try Row.fetchAll(
                db, sql: "SELECT seq, size FROM record ORDER BY seq LIMIT ?", arguments: [chunk])
            var lastDropped: Int64?
            for row in oldest where totals.count > limits.maxRecords || totals.bytes > limits.maxBytes {
                lastDropped = row["seq"]
                totals.count -= 1
                totals.bytes -= row["size"] as Int
                totals.droppedFull += 1
            }
            guard let lastDropped else { return }
            try db.execute(sql: "DELETE FROM record WHERE seq <= ?", arguments: [lastDropped])
        }
    }

    // MARK: Expiry

    /// Drops the records older than the time-to-live at `now`, oldest first, counts them as dropped
    /// (expired) and returns how many. Walks in seq order and stops at the first record still fresh.
    @discardableResult
    public func expire(now: Date = Date()) async throws -> Int {
        let cutoff = now.timeIntervalSince1970 - limits.ttlSeconds
        let expired = try await onWriter(operation: "expire") { db, totals in
            var expired = 0
            while true {
                let oldest = try Row.fetchAll(db, sql: "SELECT seq, ts, size FROM record ORDER BY seq LIMIT 1000")
                var lastExpired: Int64?
                for row in oldest {
                    guard (row["ts"] as Double) < cutoff else { break }
                    lastExpired = row["seq"]
                    totals.count -= 1
                    totals.bytes -= row["size"] as Int
                    totals.droppedExpired += 1
                    expired += 1
                }
                guard let lastExpired else { break }
                try db.execute(sql: "DELETE FROM record WHERE seq <= ?", arguments: [lastExpired])
                if lastExpired != oldest.last?["seq"] { break }
            }
            return expired
        }
        if expired > 0 { disk.withLock { $0.freedInside = true } }
        return expired
    }

    // MARK: Upload

    /// The batch to upload next, or nil when nothing is buffered.
    ///
    /// If a batch was planned before and not acknowledged (the process may have crashed after the store
    /// took it), that same batch comes back, byte for byte, so the upload rewrites the same object.
    /// Otherwise the oldest records, up to `maxRecords` and about `maxBytes` of JSON lines (at least one
    /// record), are gzipped as they are read and become a new batch. A batch is of one stream, the oldest
    /// record's: the device's own records, or one Azure ML collection of one module, within one hour and
    /// not gzipped; the other streams' records stay for the next batches. Planning moves them out of the
    /// record table into the plan in one transaction: from then on no limit or expiry can drop them, and a
    /// retry never writes an object with fewer records than the one already stored.
    public func nextBatch(maxRecords: Int, maxBytes: Int = TelemetryUploader.defaultBatchBytes) async throws
        -> TelemetryBatch?
    {
        while true {
            if let plan = try readPlan() {
                if let batch = plan.batch { return batch }
                // A plan of the first schema holds only bounds: fix its content now from what is left of it.
                guard let built = try build(in: plan.firstSeq...plan.lastSeq, maxRecords: nil, maxBytes: nil) else {
                    _ = try await onWriter(operation: "clear upload plan") { db, _ in try UploadPlan.deleteAll(db) }
                    continue
                }
                if let batch = try await fix(built, name: plan.name ?? "\(plan.firstSeq)-\(plan.lastSeq)", day: plan.day) {
                    return batch
                }
                continue
            }
            guard let built = try build(in: 1...Int64.max, maxRecords: maxRecords, maxBytes: maxBytes) else { return nil }
            let name = "\(identity)-\(built.firstSeq)-\(built.lastSeq)"
            let first = Date(timeIntervalSince1970: built.firstTs)
            let day = built.stream.collection == nil ? TelemetryBatch.day(of: first) : TelemetryBatch.hour(of: first)
            if let batch = try await fix(built, name: name, day: day) {
                return batch
            }
            // Limits or expiry dropped some of those records while they were read: read again.
        }
    }

    /// Deletes the acknowledged batch's plan and counts its records as uploaded, in one transaction.
    public func acknowledge(_ batch: TelemetryBatch) async throws {
        try await onWriter(operation: "acknowledge upload") { db, totals in
            guard let plan = try UploadPlan.fetchOne(db), plan.name == batch.name, let records = plan.records,
                let bytes = plan.bytes
            else { return }
            try UploadPlan.deleteAll(db)
            totals.count -= records
            totals.bytes -= bytes
            totals.uploaded += Int64(records)
        }
        // The deleted rows' pages take new records, even on a full disk.
        disk.withLock { $0.freedInside = true }
    }

    /// Records read and gzipped for a batch, not yet fixed.
    private struct BuiltBatch: Sendable {
        var stream: Stream
        var firstSeq: Int64
        var firstTs: Double
        var lastSeq: Int64
        var count: Int
        /// Their `size` total, as the limits count it.
        var bytes: Int
        var object: Data
        var uncompressedBytes: Int
    }

    /// Reads the oldest records of the oldest record's stream in `range` through a WAL reader and gzips
    /// them as they come (an Azure ML collection's stay plain).
    private func build(in range: ClosedRange<Int64>, maxRecords: Int?, maxBytes: Int?) throws -> BuiltBatch? {
        do {
            return try pool.read { db -> BuiltBatch? in
                guard
                    let head = try Row.fetchOne(
                        db, sql: "SELECT collection, module FROM record WHERE seq BETWEEN ? AND ? ORDER BY seq LIMIT 1",
                        arguments: [range.lowerBound, range.upperBound])
                else { return nil }
                let stream = try Stream(head)
                var writer = try TelemetryLineWriter(deviceId: deviceId)
                let gzip = stream.collection == nil ? try GzipStream() : nil
                var plain = Data()
                func take() throws {
                    if let gzip { try gzip.append(writer.takeLines()) } else { plain.append(writer.takeLines()) }
                }
                var first: (seq: Int64, ts: Double)?
                var lastSeq: Int64 = 0
                var bytes = 0
                var arguments: StatementArguments = [range.lowerBound, range.upperBound]
                arguments += stream.arguments
                arguments += [maxRecords ?? -1]
                let rows = try Row.fetchCursor(
                    db,
                    sql: "SELECT seq, ts, module, kind, data, size FROM record WHERE seq BETWEEN ? AND ? AND \(stream.condition) ORDER BY seq LIMIT ?",
                    arguments: arguments)
                while let row = try rows.next() {
                    let seq: Int64 = row["seq"]
                    let ts: Double = row["ts"]
                    if stream.collection == nil {
                        try writer.append(seq: seq, ts: ts, module: row["module"], kind: row["kind"], data: row["data"])
                    } else {
                        // Azure ML's readers pick objects by their hour folder: one hour per object.
                        if let first, (ts / 3600).rounded(.down) != (first.ts / 3600).rounded(.down) { break }
                        writer.appendEvent(data: row["data"])
                    }
                    if first == nil { first = (seq, ts) }
                    lastSeq = seq
                    bytes += row["size"] as Int
                    if writer.lines.count >= 64 * 1024 { try take() }
                    if let maxBytes, writer.bytes >= maxBytes { break }
                }
                guard let first else { return nil }
                try take()
                return BuiltBatch(
                    stream: stream, firstSeq: first.seq, firstTs: first.ts, lastSeq: lastSeq, count: writer.count,
                    bytes: bytes, object: try gzip?.finish() ?? plain, uncompressedBytes: writer.bytes)
            }
        } catch {
            throw TelemetryBufferError.read(path: path, reason: "\(error)")
        }
    }

    /// Moves `built`'s records from the record table into the plan, unless some of them went meanwhile
    /// (then nil: the caller reads again).
    private func fix(_ built: BuiltBatch, name: String, day: String) async throws -> TelemetryBatch? {
        let plan = UploadPlan(
            firstSeq: built.firstSeq, lastSeq: built.lastSeq, day: day, name: name, records: built.count,
            bytes: built.bytes, uncompressedBytes: built.uncompressedBytes, object: built.object,
            collection: built.stream.collection?.rawValue, module: built.stream.collection.map { _ in built.stream.module })
        var arguments: StatementArguments = [built.firstSeq, built.lastSeq]
        arguments += built.stream.arguments
        let condition = built.stream.condition
        let fixed = try await onWriter(operation: "save upload plan") { [arguments] db, _ in
            let present = try Int.fetchOne(
                db, sql: "SELECT count(*) FROM record WHERE seq BETWEEN ? AND ? AND \(condition)", arguments: arguments)
            guard present == built.count else { return false }
            try db.execute(sql: "DELETE FROM record WHERE seq BETWEEN ? AND ? AND \(condition)", arguments: arguments)
            try UploadPlan.deleteAll(db)
            try plan.insert(db)
            return true
        }
        return fixed ? plan.batch : nil
    }

    // MARK: Reading

    /// What the buffer holds and the drop/upload counters.
    public func stats() throws -> TelemetryBufferStats {
        let current = totals.withLock { $0 }
        let oldest: Double?
        do {
            oldest = try pool.read { db in try Double.fetchOne(db, sql: "SELECT ts FROM record ORDER BY seq LIMIT 1") }
        } catch {
            throw TelemetryBufferError.read(path: path, reason: "\(error)")
        }
        return TelemetryBufferStats(
            buffered: current.count, bufferedBytes: current.bytes, oldest: oldest.map(Date.init(timeIntervalSince1970:)),
            lastSeq: current.lastSeq, uploaded: current.uploaded, droppedFull: current.droppedFull,
            droppedExpired: current.droppedExpired, refusedDiskFull: current.refusedDiskFull,
            diskFull: disk.withLock { $0.full })
    }

    /// The figures last committed to the buffer at `path`, read without writing anything (for
    /// `edge-runtime status`, beside a running daemon); nil when there is no buffer there.
    public static func recordedHealth(at path: String) -> TelemetryHealth? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        guard let totals = try? DatabaseQueue(path: path, configuration: configuration).read({ try Totals.load($0) }) else {
            return nil
        }
        return TelemetryHealth(
            buffered: totals.count, oldestAgeSeconds: 0, uploaded: Int(totals.uploaded),
            dropped: Int(totals.droppedFull + totals.droppedExpired),
            refused: totals.refusedDiskFull > 0 ? ["disk-full": Int(totals.refusedDiskFull)] : nil)
    }

    /// The buffered records with seq in `range`, in seq order, at most `limit` of them.
    public func readRecords(in range: ClosedRange<Int64>, limit: Int?) throws -> [TelemetryRecord] {
        let decoder = FleetJSON.decoder()
        do {
            return try pool.read { db in
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT seq, ts, module, kind, data FROM record WHERE seq BETWEEN ? AND ? ORDER BY seq LIMIT ?",
                    arguments: [range.lowerBound, range.upperBound, limit ?? -1])
                var records: [TelemetryRecord] = []
                while let row = try rows.next() {
                    let kindName: String = row["kind"]
                    guard let kind = TelemetryRecord.Kind(rawValue: kindName) else {
                        throw TelemetryBufferError.read(path: path, reason: "record \(row["seq"] as Int64) has unknown kind '\(kindName)'")
                    }
                    records.append(
                        TelemetryRecord(
                            ts: Date(timeIntervalSince1970: row["ts"]), deviceId: deviceId, module: row["module"],
                            kind: kind, seq: row["seq"], data: try decoder.decode(JSONValue.self, from: row["data"] as Data)))
                }
                return records
            }
        } catch let error as TelemetryBufferError {
            throw error
        } catch {
            throw TelemetryBufferError.read(path: path, reason: "\(error)")
        }
    }

    private func readPlan() throws -> UploadPlan? {
        do {
            return try pool.read { db in try UploadPlan.fetchOne(db) }
        } catch {
            throw TelemetryBufferError.read(path: path, reason: "\(error)")
        }
    }

    // MARK: Plumbing

    /// Runs `body` in a write transaction on the writer queue, with the totals it may change.
    private func onWriter<T: Sendable>(
        operation: String, _ body: @escaping @Sendable (Database, inout Totals) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            writer.async {
                do {
                    let before = self.totals.withLock { $0 }
                    var next = before
                    let result = try self.pool.write { db in
                        let result = try body(db, &next)
                        if next != before {
                            try next.saveCounters(db)
                        }
                        return result
                    }
                    self.totals.withLock { $0 = next }
                    continuation.resume(returning: result)
                } catch {
                    if Self.isDiskFull(error) { self.diskFilled() }
                    continuation.resume(
                        throwing: TelemetryBufferError.write(path: self.path, operation: operation, reason: "\(error)"))
                }
            }
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE record (
                        seq INTEGER PRIMARY KEY,
                        ts DOUBLE NOT NULL,
                        module TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        data BLOB NOT NULL,
                        size INTEGER NOT NULL
                    );
                    CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                    CREATE TABLE upload_plan (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        firstSeq INTEGER NOT NULL,
                        lastSeq INTEGER NOT NULL,
                        day TEXT NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v2-fixed-batches") { db in
            try db.execute(
                sql: """
                    CREATE TABLE identity (id INTEGER PRIMARY KEY CHECK (id = 1), bufferId TEXT NOT NULL);
                    ALTER TABLE upload_plan ADD COLUMN name TEXT;
                    ALTER TABLE upload_plan ADD COLUMN records INTEGER;
                    ALTER TABLE upload_plan ADD COLUMN bytes INTEGER;
                    ALTER TABLE upload_plan ADD COLUMN uncompressedBytes INTEGER;
                    ALTER TABLE upload_plan ADD COLUMN object BLOB;
                    """)
            // 64 random bits, as 16 hex digits.
            try db.execute(
                sql: "INSERT INTO identity (id, bufferId) VALUES (1, ?)",
                arguments: [String(format: "%016llx", UInt64.random(in: .min ... .max))])
        }
        migrator.registerMigration("v3-azureml-collections") { db in
            try db.execute(
                sql: """
                    ALTER TABLE record ADD COLUMN collection TEXT;
                    ALTER TABLE upload_plan ADD COLUMN collection TEXT;
                    ALTER TABLE upload_plan ADD COLUMN module TEXT;
                    """)
        }
        return migrator
    }
}

/// The records one object holds: the device's own (of every module), or one Azure ML collection of
/// one module.
private struct Stream: Sendable {
    var collection: AzureMLCollection?
    var module: String

    /// The stream of a `record` row with `collection` and `module`.
    init(_ row: Row) throws {
        module = row["module"]
        guard let name: String = row["collection"] else { return }
        guard let collection = AzureMLCollection(rawValue: name) else {
            throw DatabaseError(message: "a record has the unknown collection '\(name)'")
        }
        self.collection = collection
    }

    /// The SQL condition that picks the stream's `record` rows, with `arguments`.
    var condition: String { collection == nil ? "collection IS NULL" : "collection = ? AND module = ?" }
    var arguments: StatementArguments { collection.map { [$0.rawValue, module] } ?? [] }
}

/// A row as it goes into the `record` table; `data` is the JSON of the record's data.
private struct StoredRow: Sendable {
    var ts: Double
    var module: String
    var kind: String
    var data: Data
    /// The Azure ML collection's name, or nil.
    var collection: String?
    var size: Int { module.utf8.count + data.count }
}

private struct AppendWaiter: Sendable {
    var rows: [StoredRow]
    var continuation: CheckedContinuation<ClosedRange<Int64>, any Error>
}

/// Whether the disk filled, and whether uploads or expiry deleted rows since.
private struct DiskState: Sendable {
    var full = false
    var freedInside = false
    /// When a refusal last saved the counters.
    var countersSaved = ContinuousClock.now - .seconds(60)
}

private struct PendingAppends: Sendable {
    var waiters: [AppendWaiter] = []
    /// True while a `commitPending` is scheduled or running.
    var draining = false
}

/// The buffer's figures, kept in memory and in the `counter` table. `lastSeq` is persisted so that
/// sequence numbers never repeat, even after every record was uploaded and deleted.
private struct Totals: Equatable, Sendable {
    var lastSeq: Int64 = 0
    var count = 0
    var bytes = 0
    var uploaded: Int64 = 0
    var droppedFull: Int64 = 0
    var droppedExpired: Int64 = 0
    /// Not saved by the refusal itself (the disk is full): by the next write that commits.
    var refusedDiskFull: Int64 = 0

    static func load(_ db: Database) throws -> Totals {
        var counters: [String: Int64] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, value FROM counter") {
            counters[row["name"]] = row["value"]
        }
        let sizes = try Row.fetchOne(db, sql: "SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes, max(seq) AS maxSeq FROM record")!
        // A planned batch's records left the record table but are still buffered.
        let planned = try Row.fetchOne(
            db, sql: "SELECT coalesce(sum(records), 0) AS n, coalesce(sum(bytes), 0) AS bytes, max(lastSeq) AS maxSeq FROM upload_plan")!
        return Totals(
            lastSeq: max(counters["lastSeq"] ?? 0, sizes["maxSeq"] ?? 0, planned["maxSeq"] ?? 0),
            count: sizes["n"] + planned["n"], bytes: sizes["bytes"] + planned["bytes"],
            uploaded: counters["uploaded"] ?? 0, droppedFull: counters["droppedFull"] ?? 0,
            droppedExpired: counters["droppedExpired"] ?? 0, refusedDiskFull: counters["refusedDiskFull"] ?? 0)
    }

    func saveCounters(_ db: Database) throws {
        let statement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO counter (name, value) VALUES (?, ?)")
        for (name, value) in [
            ("lastSeq", lastSeq), ("uploaded", uploaded), ("droppedFull", droppedFull), ("droppedExpired", droppedExpired),
            ("refusedDiskFull", refusedDiskFull),
        ] {
            try statement.execute(arguments: [name, value])
        }
    }
}

/// The batch being uploaded, with its records already gzipped: persisted before the upload so that a
/// restart rewrites the same object with the same bytes. A plan of the first schema has only bounds and
/// day (the rest nil); its records are then still in the record table.
private struct UploadPlan: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "upload_plan"
    var id = 1
    var firstSeq: Int64
    var lastSeq: Int64
    var day: String
    var name: String?
    var records: Int?
    var bytes: Int?
    var uncompressedBytes: Int?
    var object: Data?
    /// An Azure ML collection's batch: its collection and module (third schema; nil otherwise).
    var collection: String?
    var module: String?

    /// The batch, once its content is fixed.
    var batch: TelemetryBatch? {
        guard let name, let records, let uncompressedBytes, let object else { return nil }
        return TelemetryBatch(
            name: name, firstSeq: firstSeq, lastSeq: lastSeq, day: day, count: records, object: object,
            uncompressedBytes: uncompressedBytes, collection: collection.flatMap(AzureMLCollection.init(rawValue:)),
            module: module)
    }
}
