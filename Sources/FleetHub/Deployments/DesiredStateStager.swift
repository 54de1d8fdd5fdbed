import FleetCore
import Foundation
import GRDB

/// Recomputes every device's desired state inside the caller's transaction, and for
/// each device whose state changed stores the next revision, signed, ready to publish.
///
/// A removed device gets an empty state (run nothing); its row stays, so a device
/// added again under the same id continues with a higher revision.
enum DesiredStateStager {
    /// Returns the ids of the devices that got a new revision.
    static func stage(_ db: Database, workspace: Workspace, now: Date = Date()) throws -> [String] {
        let config = try workspace.config()
        let deployments = try DeploymentStore.all(db)
        let tagsByDevice = try DeploymentStore.deviceTags(db)
        var previous: [String: (revision: Int, content: String)] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT deviceId, revision, content FROM desiredState") {
            previous[row["deviceId"]] = (row["revision"], row["content"])
        }

        var changed: [String] = []
        for deviceId in Set(tagsByDevice.keys).union(previous.keys).sorted() {
            let content: DesiredContent
            if let tags = tagsByDevice[deviceId] {
                content = DesiredStateComposer.compose(tags: tags, deployments: deployments, bundleURL: config.bundleURL)
            } else {
                content = DesiredContent(deployments: [], modules: [])
            }
            let text = String(decoding: try FleetJSON.encode(content), as: UTF8.self)
            let last = previous[deviceId]
            guard last?.content != text else { continue }
            let revision = (last?.revision ?? 0) + 1
            let state = DesiredState(
                deviceId: deviceId, revision: revision, issuedAt: Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down)),
                deployments: content.deployments, modules: content.modules)
            let envelope = try FleetJSON.encode(try workspace.signingKey.sign(state))
            try db.execute(
                sql: """
                    INSERT INTO desiredState (deviceId, revision, content, envelope, publishedRevision)
                    VALUES (?1, ?2, ?3, ?4, 0)
                    ON CONFLICT(deviceId) DO UPDATE SET revision = ?2, content = ?3, envelope = ?4
                    """,
                arguments: [deviceId, revision, text, envelope])
            changed.append(deviceId)
        }
        return changed
    }
}
