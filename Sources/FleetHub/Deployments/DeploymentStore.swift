import FleetCore
import Foundation
import GRDB

/// What a change to deployments or devices did: the devices that got a new revision,
/// and warnings worth showing (such as a target that matches no device).
public struct RolloutChange: Equatable, Sendable {
    public var changedDevices: [String]
    public var warnings: [String]

    public init(changedDevices: [String], warnings: [String]) {
        self.changedDevices = changedDevices
        self.warnings = warnings
    }
}

/// Stores deployments and applies manifests: validate, resolve bundles, store, and
/// stage the new desired state of every device, all in one transaction.
public struct DeploymentStore: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Deploys the manifest in `file` (creating or replacing the deployment of its name).
    public func deploy(fileAt file: String, now: Date = Date()) throws -> RolloutChange {
        try deploy(ManifestParser.parse(fileAt: file), now: now)
    }

    public func deploy(_ parsed: ParsedManifest, now: Date = Date()) throws -> RolloutChange {
        let manifest = parsed.manifest
        let timestamp = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        return try workspace.database.write { db in
            var modules: [ResolvedDeployment.Module] = []
            var moduleIds: [Int64] = []
            for (index, entry) in manifest.modules.enumerated() {
                let reference = try VersionedName(parsingExact: entry.bundle)
                let row: Row
                do {
                    row = try ModuleRegistry.row(of: reference, in: db)
                } catch let error as RegistryError {
                    throw parsed.error("modules[\(index)].bundle", "\(error)")
                }
                let packaged = try ModuleRegistry.module(row)
                moduleIds.append(row["id"])
                modules.append(ResolvedDeployment.Module(
                    name: entry.name, bundle: entry.bundle, kind: packaged.kind, digest: packaged.digest,
                    size: packaged.size, desiredStatus: entry.desiredStatus, restartPolicy: entry.restartPolicy,
                    startupOrder: entry.startupOrder, workers: entry.workers, env: entry.env, telemetry: entry.telemetry))
            }
            let existing = try Row.fetchOne(
                db, sql: "SELECT id, createdAt FROM deployment WHERE name = ?", arguments: [manifest.name])
            let createdAt: Date = existing?["createdAt"] ?? timestamp
            if let id: Int64 = existing?["id"] {
                try db.execute(sql: "DELETE FROM deployment WHERE id = ?", arguments: [id])
            }
            var resolved = ResolvedDeployment(
                name: manifest.name, priority: manifest.priority, target: manifest.target, modules: modules,
                sequence: 0, createdAt: createdAt, updatedAt: timestamp)
            try db.execute(
                sql: """
                    INSERT INTO deployment (name, priority, target, definition, createdAt, updatedAt)
                    VALUES (?, ?, ?, '', ?, ?)
                    """,
                arguments: [manifest.name, manifest.priority, manifest.target, createdAt, timestamp])
            let id = db.lastInsertedRowID
            resolved.sequence = id
            try db.execute(
                sql: "UPDATE deployment SET definition = ? WHERE id = ?",
                arguments: [String(decoding: try FleetJSON.encode(resolved), as: UTF8.self), id])
            for moduleId in Set(moduleIds) {
                try db.execute(
                    sql: "INSERT INTO deploymentModule (deploymentId, moduleId) VALUES (?, ?)", arguments: [id, moduleId])
            }
            let target = try TargetExpression(parsing: manifest.target)
            let targeted = try Self.deviceTags(db).filter { target.matches($0.value) }.count
            let warnings = targeted == 0
                ? ["deployment '\(manifest.name)': target '\(manifest.target)' matches no registered device"] : []
            return RolloutChange(
                changedDevices: try DesiredStateStager.stage(db, workspace: workspace, now: now), warnings: warnings)
        }
    }

    /// Deletes a deployment; the devices it contributed to get a new desired state.
    public func delete(name: String, now: Date = Date()) throws -> RolloutChange {
        try workspace.database.write { db in
            try db.execute(sql: "DELETE FROM deployment WHERE name = ?", arguments: [name])
            guard db.changesCount > 0 else { throw DeploymentError.unknownDeployment(name) }
            return RolloutChange(
                changedDevices: try DesiredStateStager.stage(db, workspace: workspace, now: now), warnings: [])
        }
    }

    /// Recomputes every device's desired state, e.g. after the public URL (and so
    /// every bundle URL) changed.
    public func restage(now: Date = Date()) throws -> RolloutChange {
        try workspace.database.write { db in
            RolloutChange(changedDevices: try DesiredStateStager.stage(db, workspace: workspace, now: now), warnings: [])
        }
    }

    public func list() throws -> [ResolvedDeployment] {
        try workspace.database.read { db in try Self.all(db) }
    }

    public func show(name: String) throws -> ResolvedDeployment {
        guard let deployment = try list().first(where: { $0.name == name }) else {
            throw DeploymentError.unknownDeployment(name)
        }
        return deployment
    }

    /// The devices a deployment's target currently matches.
    public func targetedDevices(of deployment: ResolvedDeployment) throws -> [String] {
        let target = try TargetExpression(parsing: deployment.target)
        return try workspace.database.read { db in
            try Self.deviceTags(db).filter { target.matches($0.value) }.map(\.key).sorted()
        }
    }

    static func all(_ db: Database) throws -> [ResolvedDeployment] {
        try String.fetchAll(db, sql: "SELECT definition FROM deployment ORDER BY name").map {
            try FleetJSON.decode(ResolvedDeployment.self, from: Data($0.utf8))
        }
    }

    static func deviceTags(_ db: Database) throws -> [String: [String: String]] {
        var tags: [String: [String: String]] = [:]
        for id in try String.fetchAll(db, sql: "SELECT id FROM device") { tags[id] = [:] }
        for row in try Row.fetchAll(db, sql: "SELECT deviceId, key, value FROM deviceTag") {
            tags[row["deviceId"], default: [:]][row["key"]] = row["value"]
        }
        return tags
    }
}

/// Why a deployment command was refused.
public enum DeploymentError: Error, Equatable, CustomStringConvertible {
    case unknownDeployment(String)

    public var description: String {
        switch self {
        case .unknownDeployment(let name):
            "no deployment '\(name)'; `fleethub deployment list` shows the active deployments"
        }
    }
}
