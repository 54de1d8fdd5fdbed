import FleetCore
import Foundation
import FleetSQL

/// Recomputes every device's desired state inside the caller's transaction, and for
/// each device whose state changed stores the next revision, signed, ready to publish,
/// keeping the content it replaces as `previousContent` (`BundleGrants`).
///
/// A removed device gets an empty state (run nothing); its row stays, so a device
/// added again under the same id continues with a higher revision.
enum DesiredStateStager {
    /// Returns the ids of the devices that got a new revision.
    static func stage(_ db: SQLTransaction, workspace: Workspace, now: Date = Date()) throws -> [String] {
        let config = try workspace.config()
        let layers = try DeploymentLayers(db)
        let tagsByDevice = try DeploymentStore.deviceTags(db)
        var previous: [String: (revision: Int, content: String)] = [:]
        for row in try db.rows("SELECT deviceId, revision, content FROM desiredState") {
            previous[row["deviceId"]] = (row["revision"], row["content"])
        }

        var changed: [String] = []
        for deviceId in Set(tagsByDevice.keys).union(previous.keys).sorted() {
            let content: DesiredContent
            if let tags = tagsByDevice[deviceId] {
                content = DesiredStateComposer.compose(
                    tags: tags, deployments: layers.deployments(for: deviceId), bundleURLs: config.downloadURLs(for:))
            } else {
                content = DesiredContent(deployments: [], modules: [])
            }
            let text = String(decoding: try FleetJSON.encode(content), as: UTF8.self)
            let last = previous[deviceId]
            guard last?.content != text else { continue }
            let revision = (last?.revision ?? 0) + 1
            let state = DesiredState(
                deviceId: deviceId, revision: revision, issuedAt: DeploymentStore.seconds(now),
                deployments: content.deployments, modules: content.modules)
            let envelope = try FleetJSON.encode(try workspace.signingKey.sign(state))
            try db.execute("""
                    INSERT INTO desiredState (deviceId, revision, content, envelope, publishedRevision)
                    VALUES (?1, ?2, ?3, ?4, 0)
                    ON CONFLICT(deviceId) DO UPDATE SET previousContent = desiredState.content, revision = ?2, content = ?3, envelope = ?4
                    """, [deviceId, revision, text, envelope])
            changed.append(deviceId)
        }
        // An assignment is matched with reports from the first revision that carries it.
        try db.execute("""
                UPDATE deploymentAssignment SET revision = COALESCE(
                    (SELECT revision FROM desiredState WHERE desiredState.deviceId = deploymentAssignment.deviceId), 0)
                WHERE revision = 0
                """)
        return changed
    }
}

/// Which version of each deployment applies to each device: the one a rollout
/// assigned it, else the deployment's stable version (none while a first rollout
/// has not completed).
struct DeploymentLayers {
    private var latest: [ResolvedDeployment]
    private var stable: [String: (version: Int, promoted: Bool)] = [:]
    private var assignments: [String: [String: (version: Int, promoted: Bool)]] = [:]
    private var versions: [String: [Int: ResolvedDeployment]] = [:]

    init(_ db: SQLTransaction) throws {
        latest = try DeploymentStore.all(db)
        for row in try db.rows("SELECT name, stableVersion, stablePromoted FROM deployment WHERE stableVersion IS NOT NULL") {
            stable[row["name"]] = (row["stableVersion"], row["stablePromoted"])
        }
        for row in try db.rows("SELECT deployment, deviceId, version, promoted FROM deploymentAssignment") {
            assignments[row["deployment"], default: [:]][row["deviceId"]] = (row["version"], row["promoted"])
        }
        for deployment in latest {
            var wanted = Set(assignments[deployment.name]?.values.map(\.version) ?? [])
            if let version = stable[deployment.name]?.version { wanted.insert(version) }
            for version in wanted {
                var definition = try DeploymentStore.version(version, of: deployment.name, db: db).definition
                // Versions of one deployment keep its place in the layering order.
                definition.sequence = deployment.sequence
                versions[deployment.name, default: [:]][version] = definition
            }
        }
    }

    func deployments(for deviceId: String) -> [ResolvedDeployment] {
        latest.compactMap { deployment in
            guard let choice = assignments[deployment.name]?[deviceId] ?? stable[deployment.name],
                let definition = versions[deployment.name]?[choice.version]
            else { return nil }
            return choice.promoted ? definition.promoted : definition
        }
    }
}
