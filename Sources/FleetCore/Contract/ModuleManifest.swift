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
    /// Every distribution of the environment, as the hub resolved it at packaging: a device
    /// installs exactly these artifacts or nothing, so no index or mirror can change what it
    /// runs. Nil in bundles packaged before the hub pinned (installed unpinned, with a warning).
    public var pins: [RequirementPin]?
    /// The requirements file's index options (`--index-url …`, `--find-links …`): where a
    /// device's pip looks for the pins. Nil when the bundle vendors its wheels.
    public var indexOptions: [String]?
    /// The training data's input summaries and bins, from the packaged model's
    /// `--baseline`: the device bins its inputs with them (docs/drift.md). Nil without one.
    public var baseline: DriftBaseline?
    public var createdAt: Date

    public init(
        name: String, version: Int, kind: ModuleKind, entry: String? = nil, command: [String]? = nil,
        models: [ModelFileEntry], files: [FileEntry], requirements: [String], pins: [RequirementPin]? = nil,
        indexOptions: [String]? = nil, baseline: DriftBaseline? = nil, createdAt: Date
    ) {
        self.name = name
        self.version = version
        self.kind = kind
        self.entry = entry
        self.command = command
        self.models = models
        self.files = files
        self.requirements = requirements
        self.pins = pins
        self.indexOptions = indexOptions
        self.baseline = baseline
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

/// One distribution a module's environment holds, pinned by the hub: the exact version and
/// the sha256 of the one artifact (wheel or sdist) a device may install for it.
public struct RequirementPin: Codable, Equatable, Sendable {
    public var name: String
    public var version: String
    /// Bare lowercase hex of the artifact's sha256.
    public var sha256: String
    /// The artifact's address when the requirement named it directly (`name @ https://…`);
    /// nil when it comes from the index.
    public var url: String?

    public init(name: String, version: String, sha256: String, url: String? = nil) {
        self.name = name
        self.version = version
        self.sha256 = sha256
        self.url = url
    }

    /// The pip requirement line that installs exactly this artifact under `--require-hashes`.
    public var requirementLine: String {
        "\(url.map { "\(name) @ \($0)" } ?? "\(name)==\(version)") --hash=sha256:\(sha256)"
    }
}
