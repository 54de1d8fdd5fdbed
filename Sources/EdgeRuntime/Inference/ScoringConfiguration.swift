import FleetCore
import Foundation

/// How to run one `python-scoring` module: where its unpacked bundle is, which
/// Python runs it, how many workers serve it and how long a request may take.
/// The supervisor builds one from the module's spec and `module.json`.
public struct ScoringConfiguration: Sendable {
    /// The module's name, as it appears in the local API's URLs.
    public var module: String
    /// The unpacked bundle: holds `module.json` and the entry script.
    public var moduleDirectory: URL
    /// The scoring script inside `moduleDirectory` (module.json's `entry`, e.g. `score.py`),
    /// or for a no-code module the model file (`onnx`) or folder (`mlflow`).
    public var entry: String
    /// `python-scoring` for a `score.py`; `onnx` or `mlflow` for a no-code module.
    public var kind: ModuleKind
    /// The bundle's version (module.json's `version`): the Open Inference model version.
    public var version: Int?
    /// The unpacked model folder, `MODEL_DIR` (and `AZUREML_MODEL_DIR` when `models` is empty).
    public var modelDirectory: URL
    /// The registered models the bundle ships in `modelDirectory` (module.json's `models`),
    /// laid out under `azureml-models/` as Azure ML does (see `azureMLModelDirectory`).
    public var models: [ScoringModel]
    /// The Python that runs the workers: the module venv's `bin/python`, or a name
    /// looked up in `PATH` such as `python3`.
    public var python: String
    /// The scoring host script (`scoring_host.py`), shipped with the runtime.
    public var hostScript: URL
    /// How many worker processes serve requests in parallel.
    public var workers: Int
    /// Variables added to the runtime's environment for the workers.
    public var environment: [String: String]
    /// Longest a `run` call may take before its worker is killed and replaced (504).
    public var requestTimeout: Duration
    /// Longest the workers' `init()` may take before the start fails.
    public var startTimeout: Duration
    /// The module's log, which the workers' standard output and error are piped into;
    /// the runtime's standard error when nil.
    public var log: RotatingLog?
    /// The workers' nice value: 0 runs them like the runtime; a shadow's workers run at
    /// `ScoringConfiguration.backgroundNiceness`, so on a busy device they get only the
    /// CPU the live workers leave and the live latency does not pay for the comparison.
    public var niceness: Int32

    /// The nice value of work that must never slow down the live path.
    public static let backgroundNiceness: Int32 = 19

    public init(
        module: String, moduleDirectory: URL, entry: String, kind: ModuleKind = .pythonScoring, version: Int? = nil,
        modelDirectory: URL? = nil, models: [ScoringModel] = [],
        python: String = "python3", hostScript: URL = ScoringHostScript.bundled, workers: Int = 1,
        environment: [String: String] = [:], requestTimeout: Duration = .seconds(30),
        startTimeout: Duration = .seconds(120), log: RotatingLog? = nil, niceness: Int32 = 0
    ) {
        self.module = module
        self.moduleDirectory = moduleDirectory
        self.entry = entry
        self.kind = kind
        self.version = version
        self.modelDirectory = modelDirectory ?? moduleDirectory.appending(path: "model")
        self.models = models
        self.python = python
        self.hostScript = hostScript
        self.workers = max(1, workers)
        self.environment = environment
        self.requestTimeout = requestTimeout
        self.startTimeout = startTimeout
        self.log = log
        self.niceness = niceness
    }
}

/// Where the runtime's scoring host (`scoring_host.py`) is installed.
public enum ScoringHostScript {
    /// The copy shipped as a resource of the EdgeRuntime library (installed next to
    /// the `edge-runtime` binary in `fleet_EdgeRuntime.resources/`).
    public static var bundled: URL {
        Bundle.module.url(forResource: "scoring_host", withExtension: "py", subdirectory: "Resources")
            ?? Bundle.module.bundleURL.appending(path: "Resources/scoring_host.py")
    }
}
