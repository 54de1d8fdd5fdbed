import FleetCore
import Foundation

/// Everything the supervisor needs to run one module: which program (or, for a
/// `python-scoring` module, which scoring script in which venv), where, with which
/// environment, and what to do when it exits.
public struct ModuleLaunch: Sendable, Equatable {
    public var name: String
    public var digest: ContentDigest
    /// The unpacked bundle; the program runs with this as its working directory.
    public var folder: URL
    /// The program of a `process` module; empty for a `python-scoring` module.
    public var command: [String]
    public var environment: [String: String]
    public var restartPolicy: RestartPolicy
    /// Set for a `python-scoring` module, which runs as a `ScoringHost` instead of `command`.
    public var scoring: ScoringProgram?

    public init(
        name: String, digest: ContentDigest, folder: URL, command: [String], environment: [String: String],
        restartPolicy: RestartPolicy, scoring: ScoringProgram? = nil
    ) {
        self.name = name
        self.digest = digest
        self.folder = folder
        self.command = command
        self.environment = environment
        self.restartPolicy = restartPolicy
        self.scoring = scoring
    }

    /// How to run `spec` from its unpacked bundle, or why it cannot be run. A
    /// `python-scoring` module runs with the `python` of its prepared venv.
    public init(spec: ModuleSpec, manifest: ModuleManifest, folder: URL, python: String? = nil) throws {
        guard spec.kind == manifest.kind || (spec.kind.isScoring && manifest.kind.isScoring) else {
            throw ModuleLaunchError.kindMismatch(module: spec.name, spec: spec.kind, bundle: manifest.kind)
        }
        var environment = spec.env
        environment["MODULE_NAME"] = spec.name
        environment["MODULE_DIR"] = folder.path
        environment["MODULE_VERSION"] = String(manifest.version)
        switch spec.kind {
        case .process:
            guard let command = manifest.command, !command.isEmpty else {
                throw ModuleLaunchError.noCommand(module: spec.name)
            }
            self.init(
                name: spec.name, digest: spec.bundle.digest, folder: folder, command: command,
                environment: ProcessInfo.processInfo.environment.merging(environment) { _, new in new },
                restartPolicy: spec.restartPolicy)
        case .pythonScoring, .onnx, .mlflow:
            guard let python else { throw ModuleLaunchError.noEnvironment(module: spec.name) }
            var models: [ScoringModel] = []
            for file in manifest.models where !models.contains(ScoringModel(name: file.name, version: file.version)) {
                models.append(ScoringModel(name: file.name, version: file.version))
            }
            let program = ScoringProgram(
                entry: manifest.entry ?? "score.py", kind: manifest.kind, version: manifest.version, python: python,
                workers: spec.workers, telemetry: spec.telemetry, models: models, baseline: manifest.baseline)
            self.init(
                name: spec.name, digest: spec.bundle.digest, folder: folder, command: [], environment: environment,
                restartPolicy: spec.restartPolicy, scoring: program)
        }
    }
}

/// What the supervisor needs to serve a `python-scoring` module with a `ScoringHost`.
public struct ScoringProgram: Sendable, Equatable {
    /// The scoring script in the module folder (module.json's `entry`), or a no-code module's model.
    public var entry: String
    /// `python-scoring`, or `onnx` / `mlflow` for a no-code module (module.json's `kind`).
    public var kind: ModuleKind
    /// The bundle's version (module.json's `version`), the Open Inference model version.
    public var version: Int?
    /// The `bin/python` of the module's venv.
    public var python: String
    public var workers: Int
    /// Which requests become inference telemetry records, and what they hold.
    public var telemetry: TelemetrySettings
    /// The registered models in the bundle (module.json's `models`, one entry per name and version).
    public var models: [ScoringModel]
    /// The training data's input summaries and bins (module.json's `baseline`), for drift.
    public var baseline: DriftBaseline?

    public init(
        entry: String, kind: ModuleKind = .pythonScoring, version: Int? = nil, python: String, workers: Int,
        telemetry: TelemetrySettings, models: [ScoringModel] = [], baseline: DriftBaseline? = nil
    ) {
        self.entry = entry
        self.kind = kind
        self.version = version
        self.python = python
        self.workers = workers
        self.telemetry = telemetry
        self.models = models
        self.baseline = baseline
    }
}

/// Why a module cannot be started from its bundle.
public enum ModuleLaunchError: Error, Equatable, CustomStringConvertible {
    case kindMismatch(module: String, spec: ModuleKind, bundle: ModuleKind)
    case noCommand(module: String)
    case noEnvironment(module: String)

    public var description: String {
        switch self {
        case .kindMismatch(let module, let spec, let bundle):
            "module '\(module)' is deployed as '\(spec.rawValue)' but its bundle is a '\(bundle.rawValue)' module; "
                + "deploy it with the kind its module.json says"
        case .noCommand(let module):
            "module '\(module)' has no command in module.json; process modules need \"command\": [\"program\", …]"
        case .noEnvironment(let module):
            "module '\(module)' is a python-scoring module but its Python environment is not prepared; "
                + "the runtime prepares it while applying the desired state (see the state's error for why it failed)"
        }
    }
}
