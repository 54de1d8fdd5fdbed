import FleetCore
import Foundation
import GRDB

/// Reads what `fleethub serve` stored about the fleet and derives, with a
/// `HealthPolicy`, what the CLI and the dashboard show: per-device summaries,
/// rollouts, alerts and rejected messages.
public struct FleetHealth: Sendable {
    public let workspace: Workspace
    public var policy: HealthPolicy

    public init(workspace: Workspace, policy: HealthPolicy = HealthPolicy()) {
        self.workspace = workspace
        self.policy = policy
    }

    /// Every registered device, by id.
    public func devices(now: Date = Date()) throws -> [DeviceHealthSummary] {
        let snapshot = try self.snapshot()
        return snapshot.devices.map {
            HealthDerivation.summary(of: $0, stored: snapshot.stored[$0.id], now: now, policy: policy, labels: snapshot.labels)
        }
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
        return FleetOverview(
            devices: summaries.count, online: summaries.filter { $0.connectivity == .online }.count,
            offline: summaries.filter { $0.connectivity == .offline }.count,
            unknown: summaries.filter { $0.connectivity == .unknown }.count, alerts: alerts, rollouts: rollouts,
            stagedRollouts: staged)
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
        let stored = try workspace.database.read { db in try Self.stored(db, deviceId: nil) }
        return Snapshot(
            devices: devices, stored: stored,
            tags: Dictionary(uniqueKeysWithValues: devices.map { ($0.id, $0.tags) }),
            labels: try ModuleRegistry(workspace: workspace).labels())
    }

    private func rollouts(of deployments: [ResolvedDeployment], snapshot: Snapshot) throws -> [DeploymentRollout] {
        let desired = Dictionary(uniqueKeysWithValues: snapshot.devices.compactMap { device in
            device.revision.map { (device.id, $0) }
        })
        return try deployments.map { deployment in
            let target = try TargetExpression(parsing: deployment.target)
            let targeted = snapshot.tags.filter { target.matches($0.value) }.map(\.key)
            return HealthDerivation.rollout(
                of: deployment, targeted: targeted, desiredRevisions: desired, reports: snapshot.reports,
                labels: snapshot.labels)
        }
    }

    static func stored(_ db: Database, deviceId: String?) throws -> [String: StoredHealth] {
        try stored(db, deviceIds: deviceId.map { [$0] })
    }

    /// What is stored of `deviceIds` (of every device when nil); only their reports are decoded.
    static func stored(_ db: Database, deviceIds: [String]?) throws -> [String: StoredHealth] {
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
}
