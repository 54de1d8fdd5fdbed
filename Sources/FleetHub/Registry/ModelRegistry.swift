import FleetCore
import Foundation
import FleetSQL

/// One registered version of a model (Azure ML semantics: a name, an auto-incremented
/// version, tags, a description and one or more files).
public struct ModelVersion: Codable, Equatable, Sendable {
    public var name: String
    public var version: Int
    public var description: String?
    public var tags: [String: String]
    public var createdAt: Date
    public var files: [ModelFile]
    /// `onnx` or `mlflow` when the runtime can serve it without a `score.py`.
    public var flavour: ModelFlavour?
    /// Its inputs and outputs, read from the ONNX graph or the MLflow signature when they could be.
    public var signature: ModelSignature?
    /// The training inputs' summaries and bins (`--baseline`), for drift; nil without one.
    public var baseline: DriftBaseline?

    public var reference: String { "\(name):\(version)" }
}

/// One file of a model version; the bytes live in the blob store under `digest`.
public struct ModelFile: Codable, Equatable, Sendable {
    /// Relative path: a registered folder keeps its name and tree.
    public var path: String
    public var digest: ContentDigest
    public var size: Int
}

/// The model registry: register, find, download and delete model versions.
public struct ModelRegistry: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Stores the files at `paths` (files, or folders that keep their tree) and
    /// registers them as the next version of `name`, with its flavour and signature when
    /// it is an ONNX file (read with onnxruntime, when the hub's Python has it) or an
    /// MLflow pyfunc model folder. `baseline` (a CSV or `.npy` file of training inputs) is
    /// summarised per feature with fixed bins (`BaselineReader`); a bad one registers nothing.
    @discardableResult
    public func register(
        name: String, paths: [String], tags: [String: String] = [:], description: String? = nil, baseline: String? = nil
    ) throws -> ModelVersion {
        try FleetName.check(name, as: .model)
        let sources = try FileCollector.collect(paths)
        let (flavour, signature) = Self.flavour(of: sources)
        let summaries = try baseline.map { try BaselineReader.read($0, signature: signature) }
        var files: [ModelFile] = []
        for source in sources {
            let stored = try workspace.blobs.store(fileAt: source.url)
            files.append(ModelFile(path: source.path, digest: stored.digest, size: stored.size))
        }
        let createdAt = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        return try workspace.database.write { db in
            let latest = try db.value(as: Int.self, "SELECT MAX(version) FROM model WHERE name = ?", [name])
            let version = (latest ?? 0) + 1
            let id = try db.insert("""
                    INSERT INTO model (name, version, description, createdAt, flavour, signature, baseline)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, [
                    name, version, description, createdAt, flavour?.rawValue,
                    try signature.map { String(decoding: try FleetJSON.encode($0), as: UTF8.self) },
                    try summaries.map { String(decoding: try FleetJSON.encode($0), as: UTF8.self) },
                ])
            for (key, value) in tags {
                try db.execute("INSERT INTO modelTag (modelId, key, value) VALUES (?, ?, ?)", [id, key, value])
            }
            for file in files {
                try db.execute(
                    "INSERT INTO modelFile (modelId, path, digest, size) VALUES (?, ?, ?, ?)",
                    [id, file.path, file.digest.description, file.size])
            }
            return ModelVersion(
                name: name, version: version, description: description, tags: tags, createdAt: createdAt,
                files: files, flavour: flavour, signature: signature, baseline: summaries)
        }
    }

    /// The flavour of the files being registered and the signature that can be read:
    /// none for an MLflow folder without the pyfunc flavour, no signature for an ONNX file
    /// onnxruntime cannot load here (`module package` says why).
    private static func flavour(of sources: [FileCollector.Source]) -> (ModelFlavour?, ModelSignature?) {
        guard let (flavour, path) = FlavourDetector.detect(sources.map(\.path)) else { return (nil, nil) }
        switch flavour {
        case .onnx:
            guard let file = sources.first(where: { $0.path == path }), OnnxInspector.looksLikeONNX(file.url) else {
                return (flavour, nil)
            }
            let description = try? OnnxInspector.describe(file.url, as: path)
            return (flavour, description.map { ModelSignature(inputs: $0.inputs, outputs: $0.outputs) })
        case .mlflow:
            let mlmodel = path == "." ? "MLmodel" : "\(path)/MLmodel"
            guard let file = sources.first(where: { $0.path == mlmodel }) else { return (nil, nil) }
            do {
                return (flavour, try FlavourDetector.mlflowSignature(mlmodel: file.url))
            } catch {
                return (nil, nil)
            }
        }
    }

    /// Every version, optionally only of `name` and only those carrying all of `tags`,
    /// ordered by name and version.
    public func list(name: String? = nil, tags: [String: String] = [:]) throws -> [ModelVersion] {
        try workspace.database.read { db in
            let ids = try db.values(
                as: Int64.self,
                "SELECT id FROM model WHERE (CAST(?1 AS TEXT) IS NULL OR name = ?1) ORDER BY name, version",
                [name])
            return try ids.map { try Self.load(db, id: $0) }
                .filter { model in tags.allSatisfy { model.tags[$0.key] == $0.value } }
        }
    }

    /// The version `reference` names, or the latest when it has no version.
    public func show(_ reference: VersionedName) throws -> ModelVersion {
        try workspace.database.read { db in
            try Self.load(db, id: Self.id(of: reference, in: db))
        }
    }

    /// Writes the files of `reference` under `folder`, keeping their relative paths.
    @discardableResult
    public func download(_ reference: VersionedName, to folder: URL) throws -> ModelVersion {
        let model = try show(reference)
        for file in model.files {
            let destination = folder.appendingPathComponent(file.path)
            do {
                try FileManager.default.createDirectory(
                    at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                try? FileManager.default.removeItem(at: destination)
                try FileManager.default.copyItem(at: workspace.blobs.file(for: file.digest), to: destination)
                chmod(destination.path, 0o644)
            } catch {
                throw RegistryError.unwritable(destination.path, reason: error.localizedDescription)
            }
        }
        return model
    }

    /// Sets the tags in `set` and removes the keys in `remove` on one version (the latest
    /// when `reference` has none); returns the version as it is now.
    @discardableResult
    public func tag(_ reference: VersionedName, set: [String: String], remove: [String] = []) throws -> ModelVersion {
        try workspace.database.write { db in
            let id = try Self.id(of: reference, in: db)
            for key in remove + Array(set.keys) {
                try db.execute("DELETE FROM modelTag WHERE modelId = ? AND key = ?", [id, key])
            }
            for (key, value) in set {
                try db.execute("INSERT INTO modelTag (modelId, key, value) VALUES (?, ?, ?)", [id, key, value])
            }
            return try Self.load(db, id: id)
        }
    }

    /// Deletes one version; refused while a deployment uses a module packaged with it.
    /// Its blobs stay, since other versions or bundles may share them.
    public func delete(_ reference: VersionedName) throws {
        try workspace.database.write { db in
            let id = try Self.id(of: reference, in: db)
            let deployments = try db.values(as: String.self, """
                    SELECT DISTINCT d.name FROM deployment d
                    JOIN deploymentModule dm ON dm.deploymentId = d.id
                    JOIN moduleModel mm ON mm.moduleId = dm.moduleId
                    WHERE mm.modelId = ? ORDER BY d.name
                    """, [id])
            guard deployments.isEmpty else {
                throw RegistryError.modelInUse(reference.description, deployments: deployments)
            }
            try db.execute("DELETE FROM model WHERE id = ?", [id])
        }
    }

    static func id(of reference: VersionedName, in db: SQLTransaction) throws -> Int64 {
        guard let id: Int64 = try reference.row(in: "model", selecting: "id", db: db)?["id"] else { throw RegistryError.unknownModel(reference.description) }
        return id
    }

    static func load(_ db: SQLTransaction, id: Int64) throws -> ModelVersion {
        guard let row = try db.row("SELECT * FROM model WHERE id = ?", [id]) else {
            throw RegistryError.unknownModel("#\(id)")
        }
        var tags: [String: String] = [:]
        for tag in try db.rows("SELECT key, value FROM modelTag WHERE modelId = ?", [id]) {
            tags[tag["key"]] = tag["value"]
        }
        let files = try db.rows("SELECT path, digest, size FROM modelFile WHERE modelId = ? ORDER BY path", [id]).map { file in
            ModelFile(path: file["path"], digest: try storedDigest(file["digest"]), size: file["size"])
        }
        let signature = (row["signature"] as String?).flatMap { try? FleetJSON.decode(ModelSignature.self, from: Data($0.utf8)) }
        let baseline = (row["baseline"] as String?).flatMap { try? FleetJSON.decode(DriftBaseline.self, from: Data($0.utf8)) }
        return ModelVersion(
            name: row["name"], version: row["version"], description: row["description"], tags: tags,
            createdAt: row["createdAt"], files: files, flavour: (row["flavour"] as String?).flatMap(ModelFlavour.init),
            signature: signature, baseline: baseline)
    }
}

/// Reads a digest the hub itself stored.
func storedDigest(_ text: String) throws -> ContentDigest {
    guard let digest = ContentDigest(text) else {
        throw RegistryError.blobStoreFailed(text, reason: "the database holds a malformed digest")
    }
    return digest
}
