import Foundation

/// `module.json`, the table of contents of a module bundle (docs/contract.md). The runtime
/// checks every file of an unpacked bundle against it before running anything.
public struct ModuleManifest: Codable, Equatable, Sendable {
    public var name: String
    public var version: Int
    public var kind: ModuleKind
    /// The scoring script, for `python-scoring` modules (e.g. `score.py`).
    public var entry: String?
    /// The program and its arguments, for `process` modules, relative to the bundle.
    public var command: [String]?
    public var models: [ModelFileEntry]
    public var files: [FileEntry]
    /// Python requirement lines for the module's environment.
    public var requirements: [String]
    public var createdAt: Date

    public init(
        name: String, version: Int, kind: ModuleKind, entry: String? = nil, command: [String]? = nil,
        models: [ModelFileEntry], files: [FileEntry], requirements: [String], createdAt: Date
    ) {
        self.name = name
        self.version = version
        self.kind = kind
        self.entry = entry
        self.command = command
        self.models = models
        self.files = files
        self.requirements = requirements
        self.createdAt = createdAt
    }

    /// The bundle's file name for this document.
    public static let fileName = "module.json"
}

/// A registered model's file inside a bundle.
public struct ModelFileEntry: Codable, Equatable, Sendable {
    public var name: String
    public var version: Int
    /// Path inside the bundle, under `model/`.
    public var path: String
    /// Bare lowercase hex of the file's sha256.
    public var sha256: String

    public init(name: String, version: Int, path: String, sha256: String) {
        self.name = name
        self.version = version
        self.path = path
        self.sha256 = sha256
    }
}

/// One file of a bundle, with the hash and size the runtime checks after unpacking.
public struct FileEntry: Codable, Equatable, Sendable {
    public var path: String
    /// Bare lowercase hex of the file's sha256.
    public var sha256: String
    public var size: Int

    public init(path: String, sha256: String, size: Int) {
        self.path = path
        self.sha256 = sha256
        self.size = size
    }
}
