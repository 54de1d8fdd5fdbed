import FleetCore
import Foundation
import FleetSQL

/// What a change to deployments or devices did: the devices that got a new revision,
/// and warnings worth showing (such as a target that matches no device).
public struct RolloutChange: Equatable, Sendable {
    public var changedDevices: [String]
    public var warnings: [String]
    /// The deployment version a deploy or rollback made.
    public var version: Int?
    /// The staged rollout it started, if the version has one.
    public var rollout: Rollout?

    public init(changedDevices: [String], warnings: [String], version: Int? = nil, rollout: Rollout? = nil) {
        self.changedDevices = changedDevices
        self.warnings = warnings
        self.version = version
        self.rollout = rollout
    }
}

/// One entry of `fleethub deployment history`.
public struct DeploymentVersion: Codable, Equatable, Sendable {
    public var version: Int
    public var createdAt: Date
    /// The manifest YAML as deployed (empty for versions made before history was kept).
    public var manifest: String
    /// `iris-scorer:2 (model iris:3)` per module, with the shadow's when it has one.
    public var modules: [String]
    /// `deploy`, or `rollback to N`.
    public var origin: String
}

/// Stores deployments and applies manifests: validate, resolve bundles, store a new
/// deployment version, and stage the new desired state of every device (or start
/// the version's staged rollout), all in one transaction.
public struct DeploymentStore: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Deploys the manifest in `file` as the next version of the deployment of its name.
    public func deploy(fileAt file: String, now: Date = Date()) throws -> RolloutChange {
        try deploy(ManifestParser.parse(fileAt: file), now: now)
    }

    public func deploy(_ parsed: ParsedManifest, now: Date = Date()) throws -> RolloutChange {
        let manifest = parsed.manifest
        return try workspace.database.write { db in
            var modules: [ResolvedDeployment.Module] = []
            for (index, entry) in manifest.modules.enumerated() {
                let live = try Self.packaged(entry.bundle, field: "modules[\(index)].bundle", parsed: parsed, db: db)
                var shadow: ResolvedDeployment.Shadow?
                if let spec = entry.shadow {
                    let packaged = try Self.packaged(spec.bundle, field: "modules[\(index)].shadow.bundle", parsed: parsed, db: db)
                    guard packaged.kind.isScoring, live.kind.isScoring else {
                        throw parsed.error(
                            "modules[\(index)].shadow", "only scoring modules (python-scoring, onnx, mlflow) take a shadow; \(entry.bundle) is \(live.kind.rawValue), \(spec.bundle) is \(packaged.kind.rawValue)")
                    }
                    shadow = ResolvedDeployment.Shadow(
                        bundle: spec.bundle, digest: packaged.digest, size: packaged.size, models: packaged.models,
                        sampleRate: spec.sampleRate, workers: spec.workers)
                }
                modules.append(ResolvedDeployment.Module(
                    name: entry.name, bundle: entry.bundle, kind: live.kind, digest: live.digest,
                    size: live.size, desiredStatus: entry.desiredStatus, restartPolicy: entry.restartPolicy,
                    startupOrder: entry.startupOrder, workers: entry.workers, env: entry.env, telemetry: entry.telemetry,
                    models: live.models, shadow: shadow))
            }
            let timestamp = Self.seconds(now)
            let definition = try ResolvedDeployment(
                name: manifest.name, priority: manifest.priority, target: manifest.target, modules: modules,
                rollout: manifest.rollout, sequence: 0, createdAt: timestamp, updatedAt: timestamp)
            return try install(
                definition, manifest: parsed.text, origin: "deploy", policy: manifest.rollout, db: db, now: now)
        }
    }

    /// Makes a new version with the content of `version` (default: the one before the
    /// latest) and publishes it to every targeted device at once, or with `staged`
    /// through that version's waves. It is the way out of a halted rollout.
    public func rollback(name: String, to version: Int? = nil, staged: Bool = false, now: Date = Date()) throws -> RolloutChange {
        try workspace.database.write { db in
            let versions = try Self.versions(of: name, db: db)
            guard let latest = versions.last else { throw DeploymentError.unknownDeployment(name) }
            let wanted = version ?? latest.version - 1
            guard let source = versions.first(where: { $0.version == wanted }) else {
                throw DeploymentError.unknownVersion(
                    name, wanted, known: versions.map(\.version), hint: version == nil ? "it has only version \(latest.version); there is nothing to roll back to" : nil)
            }
            var definition = source.definition
            definition.updatedAt = Self.seconds(now)
            if staged, definition.rollout == nil {
                throw DeploymentError.noWaves(name, wanted)
            }
            return try install(
                definition, manifest: source.manifest, origin: "rollback to \(wanted)",
                policy: staged ? definition.rollout : nil, db: db, now: now)
        }
    }

    /// Stores `definition` as the next version of its deployment, ends the rollout it
    /// replaces, and either puts every targeted device on it or starts its rollout.
    private func install(
        _ definition: ResolvedDeployment, manifest: String, origin: String, policy: RolloutPolicy?, db: SQLTransaction, now: Date
    ) throws -> RolloutChange {
        var resolved = definition
        let name = resolved.name
        let existing = try db.row("SELECT id, createdAt, stableVersion, stablePromoted FROM deployment WHERE name = ?", [name])
        let latest = try db.value(as: Int.self, "SELECT MAX(version) FROM deploymentVersion WHERE deployment = ?", [name]) ?? 0
        resolved.version = latest + 1
        resolved.createdAt = existing?["createdAt"] ?? Self.seconds(now)
        let previous: (version: Int?, promoted: Bool) = (existing?["stableVersion"], existing?["stablePromoted"] ?? false)
        if let id: Int64 = existing?["id"] {
            try db.execute("DELETE FROM deployment WHERE id = ?", [id])
        }
        resolved.sequence = try db.insert("""
                INSERT INTO deployment (name, priority, target, definition, createdAt, updatedAt, version, stableVersion, stablePromoted)
                VALUES (?, ?, ?, '', ?, ?, ?, ?, ?)
                """, [
                name, resolved.priority, resolved.target, resolved.createdAt, resolved.updatedAt, resolved.version,
                policy == nil ? resolved.version : previous.version, policy == nil ? false : previous.promoted,
            ])
        let text = String(decoding: try FleetJSON.encode(resolved), as: UTF8.self)
        try db.execute("UPDATE deployment SET definition = ? WHERE id = ?", [text, resolved.sequence])
        try db.execute("""
                INSERT INTO deploymentVersion (deployment, version, manifest, definition, origin, createdAt)
                VALUES (?, ?, ?, ?, ?, ?)
                """, [name, resolved.version, manifest, text, origin, Self.seconds(now)])
        try RolloutStore.supersede(deployment: name, by: resolved.version, db: db, now: now)
        try db.execute("DELETE FROM deploymentAssignment WHERE deployment = ?", [name])

        let tags = try Self.deviceTags(db)
        let targeted = tags.filter { resolved.targetExpression.matches($0.value) }.map(\.key)
        let warnings = targeted.isEmpty
            ? ["deployment '\(name)': target '\(resolved.target)' matches no registered device"] : []
        var rollout: Rollout?
        if let policy {
            let previousDefinition = try previous.version.map { try Self.version($0, of: name, db: db).definition }
            rollout = try RolloutStore.start(
                resolved, policy: policy, previous: previous.version.map { ($0, previous.promoted) },
                previousDefinition: previousDefinition, targeted: targeted, tags: tags, db: db, now: now)
        }
        try Self.recordModuleUse(of: name, sequence: resolved.sequence, db: db)
        var changed = try DesiredStateStager.stage(db, workspace: workspace, now: now)
        if let started = rollout {
            rollout = try RolloutStore.load(id: started.id, db: db)
        }
        changed.sort()
        return RolloutChange(changedDevices: changed, warnings: warnings, version: resolved.version, rollout: rollout)
    }

    /// Deletes a deployment; the devices it contributed to get a new desired state. Its
    /// history stays, so a deployment of the same name later continues its versions.
    public func delete(name: String, now: Date = Date()) throws -> RolloutChange {
        try workspace.database.write { db in
            guard try db.execute("DELETE FROM deployment WHERE name = ?", [name]) > 0 else { throw DeploymentError.unknownDeployment(name) }
            try RolloutStore.supersede(deployment: name, by: nil, db: db, now: now)
            try db.execute("DELETE FROM deploymentAssignment WHERE deployment = ?", [name])
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

    /// The latest version of every deployment.
    public func list() throws -> [ResolvedDeployment] {
        try workspace.database.read { db in try Self.all(db) }
    }

    public func show(name: String) throws -> ResolvedDeployment {
        guard let deployment = try list().first(where: { $0.name == name }) else {
            throw DeploymentError.unknownDeployment(name)
        }
        return deployment
    }

    /// Every version of a deployment, oldest first.
    public func history(name: String) throws -> [DeploymentVersion] {
        try workspace.database.read { db in
            let versions = try Self.versions(of: name, db: db)
            guard !versions.isEmpty else { throw DeploymentError.unknownDeployment(name) }
            return versions.map { stored in
                DeploymentVersion(
                    version: stored.version, createdAt: stored.createdAt, manifest: stored.manifest,
                    modules: stored.definition.modules.map { module in
                        module.label + (module.shadow.map { " shadow \($0.label)" } ?? "")
                    },
                    origin: stored.origin)
            }
        }
    }

    /// The devices a deployment's target currently matches.
    public func targetedDevices(of deployment: ResolvedDeployment) throws -> [String] {
        try workspace.database.read { db in
            try Self.deviceTags(db).filter { deployment.targetExpression.matches($0.value) }.map(\.key).sorted()
        }
    }

    /// The latest version of every deployment, by name.
    static func all(_ db: SQLTransaction) throws -> [ResolvedDeployment] {
        try db.values(as: String.self, "SELECT definition FROM deployment ORDER BY name").map {
            try FleetJSON.decode(ResolvedDeployment.self, from: Data($0.utf8))
        }
    }

    struct StoredVersion {
        var version: Int
        var createdAt: Date
        var manifest: String
        var origin: String
        var definition: ResolvedDeployment
    }

    static func versions(of name: String, db: SQLTransaction) throws -> [StoredVersion] {
        try db.rows("SELECT * FROM deploymentVersion WHERE deployment = ? ORDER BY version", [name]).map(storedVersion)
    }

    static func version(_ version: Int, of name: String, db: SQLTransaction) throws -> StoredVersion {
        guard let row = try db.row("SELECT * FROM deploymentVersion WHERE deployment = ? AND version = ?", [name, version])
        else { throw DeploymentError.unknownVersion(name, version, known: [], hint: nil) }
        return try storedVersion(row)
    }

    private static func storedVersion(_ row: SQLRow) throws -> StoredVersion {
        let text: String = row["definition"]
        return StoredVersion(
            version: row["version"], createdAt: row["createdAt"], manifest: row["manifest"], origin: row["origin"],
            definition: try FleetJSON.decode(ResolvedDeployment.self, from: Data(text.utf8)))
    }

    static func deviceTags(_ db: SQLTransaction) throws -> [String: [String: String]] {
        var tags: [String: [String: String]] = [:]
        for id in try db.values(as: String.self, "SELECT id FROM device") { tags[id] = [:] }
        for row in try db.rows("SELECT deviceId, key, value FROM deviceTag") {
            tags[row["deviceId"], default: [:]][row["key"]] = row["value"]
        }
        return tags
    }

    /// Records which packaged modules the deployment's versions in use need (the
    /// latest, the stable one and any a rollout assigned), so none can be deleted.
    static func recordModuleUse(of name: String, sequence: Int64, db: SQLTransaction) throws {
        let used = try db.values(as: Int.self, """
                SELECT version FROM deployment WHERE name = ?1
                UNION SELECT stableVersion FROM deployment WHERE name = ?1 AND stableVersion IS NOT NULL
                UNION SELECT DISTINCT version FROM deploymentAssignment WHERE deployment = ?1
                """, [name])
        var digests: Set<String> = []
        for version in used {
            for module in try Self.version(version, of: name, db: db).definition.modules {
                digests.insert(module.digest.description)
                if let shadow = module.shadow { digests.insert(shadow.digest.description) }
            }
        }
        try db.execute("DELETE FROM deploymentModule WHERE deploymentId = ?", [sequence])
        for digest in digests.sorted() {
            try db.execute(
                """
                INSERT INTO deploymentModule (deploymentId, moduleId) SELECT CAST(? AS BIGINT), id FROM module WHERE digest = ?
                ON CONFLICT DO NOTHING
                """,
                [sequence, digest])
        }
    }

    private struct Packaged {
        var kind: ModuleKind
        var digest: ContentDigest
        var size: Int
        var models: [String]
    }

    private static func packaged(_ reference: String, field: String, parsed: ParsedManifest, db: SQLTransaction) throws -> Packaged {
        let row: SQLRow
        do {
            row = try ModuleRegistry.row(of: VersionedName(parsingExact: reference), in: db)
        } catch let error as RegistryError {
            throw parsed.error(field, "\(error)")
        }
        let module = try ModuleRegistry.module(row)
        return Packaged(kind: module.kind, digest: module.digest, size: module.size, models: module.models)
    }

    static func seconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }
}

/// Why a deployment command was refused.
public enum DeploymentError: Error, Equatable, CustomStringConvertible {
    case unknownDeployment(String)
    case unknownVersion(String, Int, known: [Int], hint: String?)
    case noWaves(String, Int)
    case noRollout(String)
    case rolloutNotOpen(String, Rollout.State, command: String)

    public var description: String {
        switch self {
        case .unknownDeployment(let name):
            "no deployment '\(name)'; `fleethub deployment list` shows the active deployments"
        case .unknownVersion(let name, let version, let known, let hint):
            "deployment '\(name)' has no version \(version)"
                + (hint.map { ": \($0)" } ?? (known.isEmpty ? "" : "; its versions are \(known.map(String.init).joined(separator: ", "))"))
                + " (`fleethub deployment history \(name)`)"
        case .noWaves(let name, let version):
            "version \(version) of deployment '\(name)' has no rollout: section, so --staged has no waves to use; roll back without --staged"
        case .noRollout(let name):
            "deployment '\(name)' has never had a staged rollout (its manifest has no rollout: section)"
        case .rolloutNotOpen(let name, let state, let command):
            "the rollout of '\(name)' is \(state.rawValue); `rollout \(command)` needs a running, soaking or paused rollout"
        }
    }
}
