import FleetCore
import Foundation
import FleetSQL
import Synchronization

/// What a long-lived reader (the dashboard of `fleethub serve`) read of the fleet
/// before, so that each read at 10,000 devices fetches and decodes only what changed
/// since: the health rows written after the last one it saw (`deviceHealth.changeSeq`),
/// and the device list and module labels only when their change counters moved
/// (`hubChange`, kept by triggers); and what it derived of them (`DerivedFleet`), so
/// that only the devices a read brought in are derived again. Every instance reads the
/// shared database, so any instance shows the same.
public final class FleetReadCache: Sendable {
    struct Contents {
        var devicesVersion: Int64 = -1
        var devices: [Device] = []
        var modulesVersion: Int64 = -1
        var labels: [ContentDigest: String] = [:]
        var healthSeq: Int64 = -1
        var stored: [String: StoredHealth] = [:]
        var reports: [String: HealthReport] = [:]
        /// The ids each deployment target matches, for the device list read last.
        var targeted = TargetedDevices()
        /// What was derived of the contents; nil after the device list or the labels changed.
        var derived: DerivedFleet?
        /// The devices whose stored health changed since `derived` was brought up to date.
        var underived: Set<String> = []
    }

    private let contents = Mutex(Contents())

    public init() {}

    /// The fleet as stored now, reading only what changed since the last call. Held
    /// locked while it reads, so two readers never merge an older read over a newer one.
    func refresh(_ workspace: Workspace) throws -> Contents {
        try contents.withLock { contents in
            try Self.read(workspace, into: &contents)
            return contents
        }
    }

    /// The fleet as stored now, derived with `policy` at `now` for `deployments` (the
    /// deployment list as stored now), deriving again only what changed.
    func derived(
        _ workspace: Workspace, deployments: [ResolvedDeployment], policy: HealthPolicy, now: Date
    ) throws -> DerivedFleet {
        try contents.withLock { contents in
            try Self.read(workspace, into: &contents)
            // Taken out while it changes, so that it is not shared (and copied) with `contents`.
            var derived = contents.derived.take()
            if derived?.policy == policy {
                derived!.update(changed: contents.underived, contents: contents, deployments: deployments, now: now)
            } else {
                derived = DerivedFleet(contents, deployments: deployments, policy: policy, now: now)
            }
            contents.underived = []
            contents.derived = derived
            return derived!
        }
    }

    private static func read(_ workspace: Workspace, into contents: inout Contents) throws {
        let versions = try workspace.database.read { db in
            try Dictionary(uniqueKeysWithValues: db.rows("SELECT topic, version FROM hubChange").map {
                ($0["topic"] as String, $0["version"] as Int64)
            })
        }
        if versions["devices"] != contents.devicesVersion {
            contents.devices = try DeviceRegistry(workspace: workspace).list()
            contents.targeted = TargetedDevices()
            contents.devicesVersion = versions["devices"] ?? 0
            contents.derived = nil
        }
        if versions["modules"] != contents.modulesVersion {
            contents.labels = try ModuleRegistry(workspace: workspace).labels()
            contents.modulesVersion = versions["modules"] ?? 0
            contents.derived = nil
        }
        let after = contents.healthSeq
        let (rows, latest) = try workspace.database.read { db in
            (try db.rows("SELECT * FROM deviceHealth WHERE changeSeq > ?", [after]),
             try db.value(as: Int64.self, "SELECT MAX(changeSeq) FROM deviceHealth") ?? 0)
        }
        let decoder = FleetJSON.decoder()
        for row in rows {
            let deviceId: String = row["deviceId"]
            let stored = try FleetHealth.storedHealth(row, decoder: decoder)
            contents.stored[deviceId] = stored
            contents.reports[deviceId] = stored.report
            if contents.derived != nil { contents.underived.insert(deviceId) }
        }
        contents.healthSeq = max(latest, after)
    }
}

/// The ids of the devices each deployment target matches, worked out once per device
/// list: matching every target against 10,000 devices' tags on every read is most of
/// what a rollout summary costs.
final class TargetedDevices: Sendable {
    private let matched = Mutex<[String: [String]]>([:])

    /// The ids of `devices` (in their order) that `deployment`'s target matches.
    func ids(of deployment: ResolvedDeployment, in devices: [Device]) -> [String] {
        if let ids = matched.withLock({ $0[deployment.target] }) { return ids }
        let ids = devices.filter { deployment.targetExpression.matches($0.tags) }.map(\.id)
        matched.withLock { $0[deployment.target] = ids }
        return ids
    }
}
