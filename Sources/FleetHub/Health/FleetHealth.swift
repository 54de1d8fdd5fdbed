import FleetCore
import Foundation
import GRDB

/// Reads what `fleethub serve` stored about the fleet and derives, with a
/// `HealthPolicy`, what the CLI and the dashboard show: per-device summaries,
/// rollouts, alerts and rejected messages.
public struct FleetHealth: Sendable {
    public let workspace: Workspace
    public var policy: HealthPolicy
    /// Reports decoded by earlier reads, for a long-lived reader such as the dashboard; nil decodes every time.
    public var decoded: DecodedReports?

    public init(workspace: Workspace, policy: HealthPolicy = HealthPolicy(), decoded: DecodedReports? = nil) {
        self.workspace = workspace
        self.policy = policy
        self.decoded = decoded
    }

    /// Every registered device, by id.
    public func devices(now: Date = Date()) throws -> [DeviceHealthSummary] {
        try fleet(now: now).devices
    }

    public func device(id: String, now: Date = Date()) throws -> DeviceHealthDetail {
        let device = try DeviceRegistry(workspace: workspace).show(id: id)
        let stored = try workspace.database.read { db in try Self.stored(db, deviceId: id)[id] }
        let history = try workspace.database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM (SELECT * FROM healthSample WHERE deviceId = ? ORDER BY id DESC LIMIT 60) ORDER BY id
                    """,
                arguments: [id]
            ).map { row in
                HealthSample(
                    receivedAt: row["receivedAt"], cpuPercent: row["cpuPercent"], memUsedBytes: row["memUsedBytes"],
                    modulesRunning: row["modulesRunning"], restarts: row["restarts"],
                    telemetryBuffered: row["telemetryBuffered"], p99Ms: row["p99Ms"])
            }
        }
        return DeviceHealthDetail(
            summary: HealthDerivation.summary(
                of: device, stored: stored, now: now, policy: policy, labels: try ModuleRegistry(workspace: workspace).labels()),
            report: stored?.report, history: history)
    }

    public func rollout(deployment name: String) throws -> DeploymentRollout {
        let deployment = try DeploymentStore(workspace: workspace).show(name: name)
        return try rollouts(of: [deployment], snapshot: snapshot())[0]
    }

    public func alerts(now: Date = Date()) throws -> [HealthAlert] {
        try overview(now: now).alerts
    }

    /// Counts, alerts and rollouts from one read of the database.
    public func overview(now: Date = Date()) throws -> FleetOverview {
        try fleet(now: now).overview
    }

    /// The overview and every device's summary, by id, from one read of the database.
    public func fleet(now: Date = Date()) throws -> (overview: FleetOverview, devices: [DeviceHealthSummary]) {
        let snapshot = try self.snapshot()
        let summaries = snapshot.devices.map {
            HealthDerivation.summary(of: $0, stored: snapshot.stored[$0.id], now: now, policy: policy, labels: snapshot.labels)
        }
        let rollouts = try rollouts(of: DeploymentStore(workspace: workspace).list(), snapshot: snapshot)
        let staged = try RolloutStore(workspace: workspace, policy: policy).all()
        let alerts = HealthDerivation.alerts(
            summaries: summaries, reports: snapshot.reports, rollouts: rollouts, now: now, policy: policy)
            + staged.filter { $0.state == .halted }.map { rollout in
                let modules = (try? DeploymentStore(workspace: workspace).history(name: rollout.deployment))?
                    .first { $0.version == rollout.version }.map { " (\($0.modules.joined(separator: ", ")))" } ?? ""
                return HealthAlert(
                    kind: .rolloutHalted, subject: rollout.deployment,
                    message: "rollout of \(rollout.deployment) version \(rollout.version)\(modules) halted at wave \(rollout.wave + 1) of \(rollout.waveSizes.count): \(rollout.reason ?? "no reason recorded"); `fleethub deployment rollback \(rollout.deployment)` or `fleethub rollout promote \(rollout.deployment)`")
            }
            + RevocationListRenewal(workspace: workspace).alerts(now: now)
            + workspace.httpsCertificateAlerts(now: now)
        let overview = FleetOverview(
            devices: summaries.count, online: summaries.filter { $0.connectivity == .online }.count,
            offline: summaries.filter { $0.connectivity == .offline }.count,
            unknown: summaries.filter { $0.connectivity == .unknown }.count, alerts: alerts, rollouts: rollouts,
            stagedRollouts: staged)
        return (overview, summaries)
    }

    /// The devices whose latest report has a module of each bundle running, by id:
    /// where each packaged version runs now.
    public func devicesRunning() throws -> [ContentDigest: [String]] {
        let snapshot = try self.snapshot()
        var running: [ContentDigest: [String]] = [:]
        for device in snapshot.devices {
            for module in snapshot.stored[device.id]?.report?.modules ?? [] where module.status == .running {
                running[module.bundleDigest, default: []].append(device.id)
            }
        }
        return running
    }

    /// Messages refused so far, by reason.
    public func rejections() throws -> [RejectionCount] {
        try workspace.database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM healthRejection ORDER BY reason").map { row in
                RejectionCount(
                    reason: row["reason"], count: row["count"], lastTopic: row["lastTopic"], lastError: row["lastError"],
                    lastAt: row["lastAt"])
            }
        }
    }

    private struct Snapshot {
        var devices: [Device]
        var stored: [String: StoredHealth]
        var reports: [String: HealthReport] { stored.compactMapValues(\.report) }
        var tags: [String: [String: String]]
        var labels: [ContentDigest: String]
    }

    private func snapshot() throws -> Snapshot {
        let devices = try DeviceRegistry(workspace: workspace).list()
        let stored = try workspace.database.read { db in try Self.stored(db, deviceIds: nil, decoded: decoded) }
        return Snapshot(
            devices: devices, stored: stored,
            tags: Dictionary(uniqueKeysWithValues: devices.map { ($0.id, $0.tags) }),
            labels: try ModuleRegistry(workspace: workspace).labels())
    }

    private func rollouts(of deployments: [ResolvedDeployment], snapshot: Snapshot) -> [DeploymentRollout] {
        let desired = Dictionary(uniqueKeysWithValues: snapshot.devices.compactMap { device in
            device.revision.map { (device.id, $0) }
        })
        return deployments.map { deployment in
            let targeted = snapshot.tags.filter { deployment.targetExpression.matches($0.value) }.map(\.key)
            return HealthDerivation.rollout(
                of: deployment, targeted: targeted, desiredRevisions: desired, reports: snapshot.reports,
                labels: snapshot.labels)
        }
    }

    static func stored(_ db: Database, deviceId: String?) throws -> [String: StoredHealth] {
        try stored(db, deviceIds: deviceId.map { [$0] })
    }

    /// What is stored of `deviceIds` (of every device when nil); only their reports are
    /// decoded, and of those only the ones `decoded` does not hold yet.
    static func stored(_ db: Database, deviceIds: [String]?, decoded: DecodedReports? = nil) throws -> [String: StoredHealth] {
        if let decoded, deviceIds == nil {
            return try stored(db, decoded: decoded)
        }
        var rows: [Row] = []
        if let deviceIds {
            // In chunks, below SQLite's limit on bound parameters.
            for start in stride(from: 0, to: deviceIds.count, by: 500) {
                let chunk = Array(deviceIds[start..<min(start + 500, deviceIds.count)])
                rows += try Row.fetchAll(
                    db, sql: "SELECT * FROM deviceHealth WHERE deviceId IN (\(chunk.map { _ in "?" }.joined(separator: ",")))",
                    arguments: StatementArguments(chunk))
            }
        } else {
            rows = try Row.fetchAll(db, sql: "SELECT * FROM deviceHealth")
        }
        let decoder = FleetJSON.decoder()
        var stored: [String: StoredHealth] = [:]
        for row in rows {
            let text: String? = row["report"]
            stored[row["deviceId"]] = StoredHealth(
                report: try text.map { try decoder.decode(HealthReport.self, from: Data($0.utf8)) },
                reportedAt: row["reportedAt"], lastSeenAt: row["lastSeenAt"], online: row["online"],
                connectionChangedAt: row["connectionChangedAt"])
        }
        return stored
    }

    /// Every device's stored health, reading the report text only of the devices whose
    /// report changed since `decoded` last saw it.
    private static func stored(_ db: Database, decoded: DecodedReports) throws -> [String: StoredHealth] {
        var stored: [String: StoredHealth] = [:]
        var stale: [String: Date] = [:]
        let rows = try Row.fetchCursor(
            db, sql: "SELECT deviceId, reportedAt, lastSeenAt, online, connectionChangedAt FROM deviceHealth")
        while let row = try rows.next() {
            let deviceId: String = row["deviceId"]
            let reportedAt: Date? = row["reportedAt"]
            let report = reportedAt.flatMap { decoded.report(of: deviceId, reportedAt: $0) }
            if report == nil, let reportedAt { stale[deviceId] = reportedAt }
            stored[deviceId] = StoredHealth(
                report: report, reportedAt: reportedAt, lastSeenAt: row["lastSeenAt"], online: row["online"],
                connectionChangedAt: row["connectionChangedAt"])
        }
        let decoder = FleetJSON.decoder()
        let ids = Array(stale.keys)
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = Array(ids[start..<min(start + 500, ids.count)])
            let reports = try Row.fetchCursor(
                db, sql: "SELECT deviceId, report, reportedAt FROM deviceHealth WHERE deviceId IN (\(chunk.map { _ in "?" }.joined(separator: ",")))",
                arguments: StatementArguments(chunk))
            while let row = try reports.next() {
                let deviceId: String = row["deviceId"]
                guard let text: String = row["report"], let reportedAt: Date = row["reportedAt"] else { continue }
                let report = try decoder.decode(HealthReport.self, from: Data(text.utf8))
                decoded.remember(report, of: deviceId, reportedAt: reportedAt)
                stored[deviceId]?.report = report
                stored[deviceId]?.reportedAt = reportedAt
            }
        }
        return stored
    }
}
