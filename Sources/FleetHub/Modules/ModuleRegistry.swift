import FleetCore
import Foundation
import FleetSQL

/// One packaged version of a module: its bundle's identity and table of contents.
public struct ModuleVersion: Codable, Equatable, Sendable {
    public var name: String
    public var version: Int
    public var kind: ModuleKind
    public var digest: ContentDigest
    public var size: Int
    public var createdAt: Date
    /// The `module.json` inside the bundle.
    public var manifest: ModuleManifest

    public var reference: String { "\(name):\(version)" }

    /// The registered models packaged in the bundle, `name:version`, each once.
    public var models: [String] {
        var models: [String] = []
        for model in manifest.models where !models.contains("\(model.name):\(model.version)") {
            models.append("\(model.name):\(model.version)")
        }
        return models
    }
}

/// What `fleethub module package` is asked to build.
public struct PackageRequest: Sendable {
    public var name: String
    public var kind: ModuleKind
    /// The registered model to ship under `model/`; required for `python-scoring`. Without
    /// an `entry`, an ONNX or MLflow model makes a no-code module (`onnx`, `mlflow`).
    public var model: VersionedName?
    /// The scoring script, relative to `source` (or a file path when there is no `source`).
    public var entry: String?
    /// The program and its arguments, for `process` modules.
    public var command: [String]?
    /// A folder whose files go to the bundle's root.
    public var source: URL?
    /// A pip requirements file.
    public var requirements: URL?
    /// Download the requirements as wheels into `wheels/`, for offline installs.
    public var vendorWheels: Bool

    public init(
        name: String, kind: ModuleKind, model: VersionedName? = nil, entry: String? = nil, command: [String]? = nil,
        source: URL? = nil, requirements: URL? = nil, vendorWheels: Bool = false
    ) {
        self.name = name
        self.kind = kind
        self.model = model
        self.entry = entry
        self.command = command
        self.source = source
        self.requirements = requirements
        self.vendorWheels = vendorWheels
    }
}

/// Packages modules into bundles (docs/contract.md), stores them content-addressed, and
/// finds them again.
public struct ModuleRegistry: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Builds the bundle of `request` and registers it as the next version of its name;
    /// when the bundle would equal the latest version's, returns that version instead,
    /// having only hashed the inputs. `progress` hears how far hashing and writing got.
    @discardableResult
    public func package(_ request: PackageRequest, progress: (BundleProgress) -> Void = { _ in }) throws -> ModuleVersion {
        try FleetName.check(request.name, as: .module)
        let contents = try BundleContents.gather(request, models: ModelRegistry(workspace: workspace))
        defer { contents.cleanUp() }
        let createdAt = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        func manifest(version: Int, createdAt: Date, pins: [RequirementPin]?) -> ModuleManifest {
            ModuleManifest(
                name: request.name, version: version, kind: contents.kind, entry: contents.entry,
                command: request.command, models: contents.modelEntries, files: [],
                requirements: contents.requirements, pins: pins, indexOptions: contents.indexOptions,
                baseline: contents.model?.baseline, createdAt: createdAt)
        }
        /// Packaging the same inputs again gives the same bundle: the latest version is reused,
        /// with the pins its resolution made.
        func unchanged(_ latest: ModuleVersion) throws -> Bool {
            let again = try BundleWriter().completed(
                manifest(version: latest.version, createdAt: latest.createdAt, pins: latest.manifest.pins),
                files: contents.files, progress: progress)
            guard again == latest.manifest else { return false }
            return BundleWriter().wouldEqual(again, files: contents.files, existing: try workspace.blobs.file(for: latest.digest))
        }
        var latest = try latestVersion(of: request.name)
        if let latest, try unchanged(latest) { return latest }
        let pins = try contents.resolveRequirements()
        // Building the bundle (hashing, compressing, digesting: seconds for a large model)
        // happens outside any transaction; only `register` holds the write lock.
        for _ in 1...Self.packagingAttempts {
            let version = (latest?.version ?? 0) + 1
            let temporary = try workspace.blobs.temporaryURL()
            defer { try? FileManager.default.removeItem(at: temporary) }
            let written = try BundleWriter().write(
                manifest: manifest(version: version, createdAt: createdAt, pins: pins), files: contents.files, to: temporary, progress: progress)
            let module = ModuleVersion(
                name: request.name, version: version, kind: contents.kind, digest: written.digest,
                size: written.size, createdAt: createdAt, manifest: written.manifest)
            try workspace.blobs.upload(temporary, as: module.digest)
            switch try register(module, bundle: temporary, model: contents.model, after: latest) {
            case .registered:
                return module
            case .taken(let newer):
                // Another packaging of the same name finished meanwhile: the same inputs
                // reuse its version, other inputs are built again as the next one.
                if try unchanged(newer) { return newer }
                latest = newer
            }
        }
        throw RegistryError.packagedMeanwhile(request.name, attempts: Self.packagingAttempts)
    }

    /// How often `package` builds a bundle again when other packagings of the same name
    /// keep taking the version it built for.
    static let packagingAttempts = 3

    private enum Registration {
        case registered
        /// The version was taken by another packaging; this is the name's latest now.
        case taken(ModuleVersion)
    }

    /// The one write transaction of packaging: checks that `module`'s version is still
    /// the next one after `expected`, moves its bundle into the blob store (a rename)
    /// and inserts its rows. When the version was taken, or an insert fails, it writes
    /// nothing and the bundle stays outside the store: no row points at a missing blob
    /// and no bundle is left that nothing refers to (in the folder: a blob bucket got it
    /// before, which is harmless, since equal bytes map to it).
    private func register(_ module: ModuleVersion, bundle: URL, model: ModelVersion?, after expected: ModuleVersion?) throws -> Registration {
        try workspace.database.write { db in
            let latest = try db.row("SELECT * FROM module WHERE name = ? ORDER BY version DESC LIMIT 1", [module.name]).map(Self.module)
            if let latest, latest.version != expected?.version { return .taken(latest) }
            let id = try db.insert("""
                    INSERT INTO module (name, version, kind, digest, size, manifest, createdAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, [
                    module.name, module.version, module.kind.rawValue, module.digest.description, module.size,
                    String(decoding: try FleetJSON.encode(module.manifest), as: UTF8.self), module.createdAt,
                ])
            if let model {
                try db.execute(
                    "INSERT INTO moduleModel (moduleId, modelId) VALUES (?, ?)",
                    [id, try ModelRegistry.id(of: VersionedName(name: model.name, version: model.version), in: db)])
            }
            // Last, so a failed insert (the model was deleted meanwhile) leaves the bundle outside the store.
            try workspace.blobs.adopt(bundle, as: module.digest)
            return .registered
        }
    }

    private func latestVersion(of name: String) throws -> ModuleVersion? {
        try workspace.database.read { db in
            try db.row("SELECT * FROM module WHERE name = ? ORDER BY version DESC LIMIT 1", [name])
                .map(Self.module)
        }
    }

    /// Every version, optionally only of `name`, ordered by name and version.
    public func list(name: String? = nil) throws -> [ModuleVersion] {
        try workspace.database.read { db in
            try db.rows("SELECT * FROM module WHERE (CAST(?1 AS TEXT) IS NULL OR name = ?1) ORDER BY name, version", [name]).map(Self.module)
        }
    }

    /// How people see each packaged bundle: `iris-scorer:2 (model iris:3)`, by digest.
    public func labels() throws -> [ContentDigest: String] {
        var labels: [ContentDigest: String] = [:]
        for module in try list() where labels[module.digest] == nil {
            labels[module.digest] = ModuleLabel.text(bundle: module.reference, models: module.models)
        }
        return labels
    }

    /// Deletes one packaged version; refused while a deployment uses it. Its bundle stays
    /// in the blob store: devices may still hold it as the version to roll back to.
    public func delete(_ reference: VersionedName) throws {
        try workspace.database.write { db in
            let id: Int64 = try Self.row(of: reference, in: db)["id"]
            let deployments = try db.values(as: String.self, """
                    SELECT DISTINCT d.name FROM deployment d JOIN deploymentModule dm ON dm.deploymentId = d.id
                    WHERE dm.moduleId = ? ORDER BY d.name
                    """, [id])
            guard deployments.isEmpty else {
                throw RegistryError.moduleInUse(reference.description, deployments: deployments)
            }
            try db.execute("DELETE FROM module WHERE id = ?", [id])
        }
    }

    /// The version `reference` names, or the latest when it has no version.
    public func show(_ reference: VersionedName) throws -> ModuleVersion {
        try workspace.database.read { db in try Self.module(Self.row(of: reference, in: db)) }
    }

    static func row(of reference: VersionedName, in db: SQLTransaction) throws -> SQLRow {
        guard let row = try reference.row(in: "module", db: db) else { throw RegistryError.unknownModule(reference.description) }
        return row
    }

    static func module(_ row: SQLRow) throws -> ModuleVersion {
        let manifestText: String = row["manifest"]
        return ModuleVersion(
            name: row["name"], version: row["version"],
            kind: ModuleKind(rawValue: row["kind"]) ?? .process,
            digest: try storedDigest(row["digest"]), size: row["size"], createdAt: row["createdAt"],
            manifest: try FleetJSON.decode(ModuleManifest.self, from: Data(manifestText.utf8)))
    }
}
