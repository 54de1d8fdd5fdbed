import FleetCore
import Foundation
import FleetSQL

/// Reads what `fleethub serve` stored about the fleet and derives, with a
/// `HealthPolicy`, what the CLI and the dashboard show: per-device summaries,
/// rollouts, alerts and rejected messages.
public struct FleetHealth: Sendable {
    public let workspace: Workspace
    public var policy: HealthPolicy
    /// What earlier reads fetched, for a long-lived reader such as the dashboard; nil reads everything every time.
    public var cache: FleetReadCache?

    public init(workspace: Workspace, policy: HealthPolicy? = nil, cache: FleetReadCache? = nil) {
        self.workspace = workspace
        self.policy = policy ?? workspace.healthPolicy
        self.cache = cache
    }

    /// Every registered device, by id.
    public func devices(now: Date = Date()) throws -> [DeviceHealthSummary] {
        try fleet(now: now).devices
    }

    public func device(id: String, now: Date = Date()) throws -> DeviceHealthDetail {
        let device = try DeviceRegistry(workspace: workspace).show(id: id)
        let stored = try workspace.database.read { db in try Self.stored(db, deviceId: id)[id] }
        let history = try workspace.database.read { db in
            try db.rows("""
                    SELECT * FROM (SELECT * FROM healthSample WHERE deviceId = ? ORDER BY id DESC LIMIT 60) AS recent ORDER BY id
                    """, [id]).map { row in
                HealthSample(
                    receivedAt: row["receivedAt"], cpuPercent: row["cpuPercent"], memUsedBytes: row["memUsedBytes"],
                    modulesRunning: row["modulesRunning"], restarts: row["restarts"],
                    telemetryBuffered: row["telemetryBuffered"], p99Ms: row["p99Ms"])
            }
        }
        return DeviceHealthDetail(
            summary: HealthDerivation.summary(
                of: device, stored: stored, now: now, policy: policy, labels: try ModuleRegistry(workspace: workspace).labels()),
            report: stored?.report, history: history,
            drift: try workspace.database.read { db in try FeatureDrift.stored(db, deviceId: id) })
    }

    public func rollout(deployment name: String) throws -> DeploymentRollout {
        let deployment = try DeploymentStore(workspace: workspace).show(name: name)
        var rollout = try rollouts(of: [deployment], snapshot: snapshot())[0]
        let own = Set(deployment.modules.map(\.name))
        let scores = try workspace.database.read { db in try FeatureDrift.stored(db) }.filter { own.contains($0.module) }
        let drift = Dictionary(grouping: scores, by: \.deviceId)
        for index in rollout.devices.indices { rollout.devices[index].drift = drift[rollout.devices[index].deviceId] }
        return rollout
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
        let deployments = try DeploymentStore(workspace: workspace).list()
        let summaries: [DeviceHealthSummary], rollouts: [DeploymentRollout], deviceAlerts: [HealthAlert]
        if let cache {
            let derived = try cache.derived(workspace, deployments: deployments, policy: policy, now: now)
            (summaries, rollouts, deviceAlerts) = (derived.summaries, derived.rollouts, derived.deviceAlerts())
        } else {
            let snapshot = try self.snapshot()
            summaries = snapshot.devices.map {
                HealthDerivation.summary(of: $0, stored: snapshot.stored[$0.id], now: now, policy: policy, labels: snapshot.labels)
            }
            rollouts = self.rollouts(of: deployments, snapshot: snapshot)
            deviceAlerts = HealthDerivation.alerts(summaries: summaries, reports: snapshot.reports, rollouts: [], now: now, policy: policy)
        }
        let staged = try RolloutStore(workspace: workspace, policy: policy).all()
        let alerts = deviceAlerts + HealthDerivation.deploymentAlerts(rollouts: rollouts, policy: policy)
            + staged.filter { $0.state == .halted }.map { rollout in
                let modules = (try? DeploymentStore(workspace: workspace).history(name: rollout.deployment))?
                    .first { $0.version == rollout.version }.map { " (\($0.modules.joined(separator: ", ")))" } ?? ""
                return HealthAlert(
                    kind: .rolloutHalted, subject: rollout.deployment,
                    message: "rollout of \(rollout.deployment) version \(rollout.version)\(modules) halted at wave \(rollout.wave + 1) of \(rollout.waveSizes.count): \(rollout.reason ?? "no reason recorded"); `fleethub deployment rollback \(rollout.deployment)` or `fleethub rollout promote \(rollout.deployment)`")
            }
            + RevocationListRenewal(workspace: workspace).alerts(now: now)
            + workspace.httpsCertificateAlerts(now: now)
            + (try workspace.database.read { db in try FeatureDrift.alerts(db, above: policy.driftAlertPSI) })
        var connected: [Connectivity: Int] = [:]
        for summary in summaries { connected[summary.connectivity, default: 0] += 1 }
        let overview = FleetOverview(
            devices: summaries.count, online: connected[.online] ?? 0, offline: connected[.offline] ?? 0,
            unknown: connected[.unknown] ?? 0, alerts: alerts, rollouts: rollouts, stagedRollouts: staged)
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
            try db.rows("SELECT * FROM healthRejection ORDER BY reason").map { row in
                RejectionCount(
                    reason: row["reason"], count: row["count"], lastTopic: row["lastTopic"], lastError: row["lastError"],
                    lastAt: row["lastAt"])
            }
        }
    }

    private struct Snapshot {
        var devices: [Device]
        var stored: [String: StoredHealth]
        var reports: [String: HealthReport]
        var labels: [ContentDigest: String]
        var targeted: TargetedDevices
    }

    private func snapshot() throws -> Snapshot {
        if let cache {
            let contents = try cache.refresh(workspace)
            return Snapshot(
                devices: contents.devices, stored: contents.stored, reports: contents.reports, labels: contents.labels,
                targeted: contents.targeted)
        }
        let devices = try DeviceRegistry(workspace: workspace).list()
        let stored = try workspace.database.read { db in try Self.stored(db, deviceIds: nil) }
        return Snapshot(
            devices: devices, stored: stored, reports: stored.compactMapValues(\.report),
            labels: try ModuleRegistry(workspace: workspace).labels(), targeted: TargetedDevices())
    }

    private func rollouts(of deployments: [ResolvedDeployment], snapshot: Snapshot) -> [DeploymentRollout] {
        let desired = Dictionary(uniqueKeysWithValues: snapshot.devices.compactMap { device in
            device.revision.map { (device.id, $0) }
        })
        return deployments.map { deployment in
            let targeted = snapshot.targeted.ids(of: deployment, in: snapshot.devices)
            return HealthDerivation.rollout(
                of: deployment, targeted: targeted, desiredRevisions: desired, reports: snapshot.reports,
                labels: snapshot.labels)
        }
    }

    static func stored(_ db: SQLTransaction, deviceId: String?) throws -> [String: StoredHealth] {
        try stored(db, deviceIds: deviceId.map { [$0] })
    }

    /// What is stored of `deviceIds` (of every device when nil).
    static func stored(_ db: SQLTransaction, deviceIds: [String]?) throws -> [String: StoredHealth] {
        var rows: [SQLRow] = []
        if let deviceIds {
            // In chunks, below SQLite's limit on bound parameters.
            for start in stride(from: 0, to: deviceIds.count, by: 500) {
                let chunk = Array(deviceIds[start..<min(start + 500, deviceIds.count)])
                rows += try db.rows("SELECT * FROM deviceHealth WHERE deviceId IN (\(chunk.map { _ in "?" }.joined(separator: ",")))",
                    chunk)
            }
        } else {
            rows = try db.rows("SELECT * FROM deviceHealth")
        }
        let decoder = FleetJSON.decoder()
        var stored: [String: StoredHealth] = [:]
        for row in rows {
            stored[row["deviceId"]] = try storedHealth(row, decoder: decoder)
        }
        return stored
    }

    /// One `deviceHealth` row, its report decoded.
    static func storedHealth(_ row: SQLRow, decoder: JSONDecoder) throws -> StoredHealth {
        let text: String? = row["report"]
        return StoredHealth(
            report: try text.map { try decoder.decode(HealthReport.self, from: Data($0.utf8)) },
            reportedAt: row["reportedAt"], lastSeenAt: row["lastSeenAt"], online: row["online"],
            connectionChangedAt: row["connectionChangedAt"])
    }
}
