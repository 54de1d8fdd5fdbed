import FleetCore
import Foundation
import FleetSQL
import Synchronization

/// Collects accepted messages and rejections in memory and writes them to SQLite
/// in one transaction per `flush()`, so 1,000 reports a second cost one commit,
/// not a thousand. Within a batch only each device's latest report and connection
/// state is kept; every report still adds a history sample.
public final class HealthWriter: Sendable {
    private struct DeviceUpdate {
        var report: String?
        var reportedAt: Date?
        var online: Bool?
        var connectionChangedAt: Date?
        var lastSeenAt: Date
    }

    private struct Sample {
        var deviceId: String
        var receivedAt: Date
        var report: HealthReport
    }

    private struct Rejected {
        var count: Int
        var topic: String
        var error: String
        var at: Date
    }

    private struct Pending {
        var devices: [String: DeviceUpdate] = [:]
        var samples: [Sample] = []
        var rejections: [String: Rejected] = [:]
        var isEmpty: Bool { devices.isEmpty && samples.isEmpty && rejections.isEmpty }
    }

    private let database: SQLDatabase
    private let pending = Mutex(Pending())
    private let baselines: DriftBaselines
    /// History samples kept per device; older ones are deleted as new ones arrive.
    public let historyLimit: Int

    init(database: SQLDatabase, historyLimit: Int = 60) {
        self.database = database
        self.historyLimit = historyLimit
        baselines = DriftBaselines(database: database)
    }

    /// Queues an accepted message; `payload` is the report's JSON as received.
    public func add(_ message: HealthMessage, payload: Data, receivedAt: Date = Date()) {
        pending.withLock { pending in
            let deviceId = message.deviceId
            var update = pending.devices[deviceId] ?? DeviceUpdate(lastSeenAt: receivedAt)
            update.lastSeenAt = receivedAt
            switch message {
            case .report(let report):
                update.report = String(decoding: payload, as: UTF8.self)
                update.reportedAt = receivedAt
                pending.samples.append(Sample(deviceId: deviceId, receivedAt: receivedAt, report: report))
            case .connection(_, let state):
                update.online = state.online
                update.connectionChangedAt = receivedAt
            }
            pending.devices[deviceId] = update
        }
    }

    /// Queues a rejection, to be added to its reason's count.
    public func add(_ rejection: HealthRejection, at: Date = Date()) {
        pending.withLock { pending in
            var entry = pending.rejections[rejection.reason] ?? Rejected(count: 0, topic: "", error: "", at: at)
            entry.count += 1
            entry.topic = rejection.topic
            entry.error = rejection.description
            entry.at = at
            pending.rejections[rejection.reason] = entry
        }
    }

    /// Writes everything queued since the last flush in one transaction; returns the
    /// number of history samples written.
    @discardableResult
    public func flush() async throws -> Int {
        let batch = pending.withLock { pending -> Pending in
            let batch = pending
            pending = Pending()
            return batch
        }
        guard !batch.isEmpty else { return 0 }
        let limit = historyLimit
        // Scored before the transaction, which stays short.
        let latest = Dictionary(batch.samples.map { ($0.deviceId, $0.report) }) { _, newer in newer }
        let drift = latest.flatMap { deviceId, report in
            FeatureDrift.scores(deviceId: deviceId, report: report, baseline: baselines.baseline(of:))
        }
        try await database.write { db in
            try FeatureDrift.replace(db, devices: Set(latest.keys), with: drift)
            // Every row this batch touches gets the next change number: readers that saw
            // up to the previous one fetch exactly these (FleetReadCache).
            let changeSeq = try db.value(as: Int64.self, "SELECT COALESCE(MAX(changeSeq), 0) + 1 FROM deviceHealth") ?? 1
            try db.insert(
                "INSERT INTO deviceHealth (deviceId, report, reportedAt, lastSeenAt, online, connectionChangedAt, changeSeq)",
                rows: batch.devices.map { deviceId, update in
                    [deviceId, update.report, update.reportedAt, update.lastSeenAt, update.online, update.connectionChangedAt, changeSeq]
                },
                """
                ON CONFLICT(deviceId) DO UPDATE SET
                    changeSeq = excluded.changeSeq,
                    report = COALESCE(excluded.report, deviceHealth.report),
                    reportedAt = COALESCE(excluded.reportedAt, deviceHealth.reportedAt),
                    lastSeenAt = CASE WHEN excluded.lastSeenAt > deviceHealth.lastSeenAt
                        THEN excluded.lastSeenAt ELSE deviceHealth.lastSeenAt END,
                    online = COALESCE(excluded.online, deviceHealth.online),
                    connectionChangedAt = COALESCE(excluded.connectionChangedAt, deviceHealth.connectionChangedAt)
                """)
            try db.insert(
                "INSERT INTO healthSample (deviceId, receivedAt, cpuPercent, memUsedBytes, modulesRunning, restarts, telemetryBuffered, p99Ms)",
                rows: batch.samples.map { sample in
                    let report = sample.report
                    return [
                        sample.deviceId, sample.receivedAt, report.system.cpuPercent, report.system.memUsedBytes,
                        report.modules.filter { $0.status == .running }.count, report.modules.reduce(0) { $0 + $1.restarts },
                        report.telemetry.buffered, report.modules.compactMap { $0.inference?.p99Ms }.max(),
                    ]
                })
            // Each device keeps its `limit` newest samples.
            try db.execute(
                """
                DELETE FROM healthSample WHERE id IN (
                    SELECT id FROM (
                        SELECT id, ROW_NUMBER() OVER (PARTITION BY deviceId ORDER BY id DESC) AS position
                        FROM healthSample WHERE deviceId IN (?…)) AS ranked
                    WHERE position > ?)
                """,
                each: Set(batch.samples.map(\.deviceId)).sorted(), after: [limit])
            let reject = """
                INSERT INTO healthRejection (reason, count, lastTopic, lastError, lastAt) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(reason) DO UPDATE SET count = healthRejection.count + excluded.count,
                    lastTopic = excluded.lastTopic, lastError = excluded.lastError, lastAt = excluded.lastAt
                """
            for (reason, entry) in batch.rejections {
                try db.execute(reject, [reason, entry.count, entry.topic, entry.error, entry.at])
            }
        }
        return batch.samples.count
    }
}
