import Foundation

/// What the hub wants one device to run (docs/contract.md). The hub signs its exact bytes;
/// the device accepts it only with a valid signature and a higher `revision`.
public struct DesiredState: Codable, Equatable, Sendable {
    public var deviceId: String
    /// Grows by one each time this device's desired state changes; never reused.
    public var revision: Int
    public var issuedAt: Date
    /// The deployments that contributed to this state, for reporting.
    public var deployments: [DeploymentReference]
    public var modules: [ModuleSpec]

    public init(deviceId: String, revision: Int, issuedAt: Date, deployments: [DeploymentReference], modules: [ModuleSpec]) {
        self.deviceId = deviceId
        self.revision = revision
        self.issuedAt = issuedAt
        self.deployments = deployments
        self.modules = modules
    }
}

/// A deployment that contributed modules to a desired state.
public struct DeploymentReference: Codable, Equatable, Hashable, Sendable {
    public var name: String
    public var priority: Int

    public init(name: String, priority: Int) {
        self.name = name
        self.priority = priority
    }
}

/// What kind of program a module is, which decides how the runtime starts it.
public enum ModuleKind: String, Codable, Sendable, CaseIterable {
    /// An Azure-ML-style `score.py` hosted by the runtime's Python scoring host.
    case pythonScoring = "python-scoring"
    /// Any executable with its files (`module.json`'s `command`).
    case process
    /// An ONNX model with no `score.py`: the scoring host serves it with onnxruntime,
    /// inputs and outputs taken from the graph (`module.json`'s `entry` is the model file).
    case onnx
    /// An MLflow model folder (`MLmodel`, pyfunc flavour) with no `score.py`, served with
    /// `mlflow.pyfunc` (`module.json`'s `entry` is the folder).
    case mlflow

    /// Whether the runtime's scoring host serves the module (a `score.py` or a no-code
    /// model): it has a Python environment, a score route and the Open Inference routes.
    public var isScoring: Bool { self != .process }
}

/// Whether the device should keep a module running or keep it stopped.
public enum DesiredStatus: String, Codable, Sendable, CaseIterable {
    case running
    case stopped
}

/// When the supervisor restarts a module's process.
public enum RestartPolicy: String, Codable, Sendable, CaseIterable {
    /// After any exit.
    case always
    /// After a non-zero exit or a signal.
    case onFailure = "on-failure"
    /// After any failure, and also when the module stops answering its health check.
    case onUnhealthy = "on-unhealthy"
    /// Never: an exited module stays stopped.
    case never
}

/// One module the device should run, fully resolved: the bundle is named by digest.
public struct ModuleSpec: Codable, Equatable, Sendable {
    public var name: String
    public var kind: ModuleKind
    public var bundle: BundleReference
    public var desiredStatus: DesiredStatus
    public var restartPolicy: RestartPolicy
    /// Modules start in ascending order of this number, and stop in descending order.
    public var startupOrder: Int
    /// How many worker processes serve a scoring module.
    public var workers: Int
    public var env: [String: String]
    public var telemetry: TelemetrySettings
    /// A challenger version evaluated beside this one; nil for none. Absent from the
    /// JSON when nil, so states without a shadow keep their exact bytes.
    public var shadow: ShadowSpec?

    public init(
        name: String, kind: ModuleKind, bundle: BundleReference, desiredStatus: DesiredStatus = .running,
        restartPolicy: RestartPolicy = .always, startupOrder: Int = 0, workers: Int = 1,
        env: [String: String] = [:], telemetry: TelemetrySettings = TelemetrySettings(), shadow: ShadowSpec? = nil
    ) {
        self.name = name
        self.kind = kind
        self.bundle = bundle
        self.desiredStatus = desiredStatus
        self.restartPolicy = restartPolicy
        self.startupOrder = startupOrder
        self.workers = workers
        self.env = env
        self.telemetry = telemetry
        self.shadow = shadow
    }
}

/// A new version of a scoring module run beside the live one before it serves
/// (docs/contract.md): the device mirrors a sample of the live requests to it, off the
/// response path, and reports how its answers compare. The live answer never
/// changes and never waits for the shadow.
public struct ShadowSpec: Codable, Equatable, Sendable {
    public var bundle: BundleReference
    /// The share of live requests mirrored to the shadow, from 0 (none) to 1 (all).
    public var sampleRate: Double
    /// How many worker processes serve the shadow.
    public var workers: Int

    public init(bundle: BundleReference, sampleRate: Double, workers: Int = 1) {
        self.bundle = bundle
        self.sampleRate = sampleRate
        self.workers = workers
    }
}

/// Where a device downloads a bundle, and what it must find there.
public struct BundleReference: Codable, Equatable, Hashable, Sendable {
    public var digest: ContentDigest
    public var size: Int
    /// The first download URL: all that a runtime without `urls` reads.
    public var url: String
    /// Every hub instance's URL for the bundle, tried in order (docs/contract.md); nil
    /// when there is one, so that states with one URL keep their exact bytes.
    public var urls: [String]?

    public init(digest: ContentDigest, size: Int, url: String) {
        self.digest = digest
        self.size = size
        self.url = url
    }

    /// A bundle offered at `urls`, the first of them also as `url`.
    public init(digest: ContentDigest, size: Int, urls: [String]) {
        self.init(digest: digest, size: size, url: urls.first ?? "")
        self.urls = urls.count > 1 ? urls : nil
    }

    /// The URLs to try, in order.
    public var downloadURLs: [String] { urls.flatMap { $0.isEmpty ? nil : $0 } ?? [url] }
}

/// What a scoring module records about its requests (docs/contract.md).
public struct TelemetrySettings: Codable, Equatable, Sendable {
    /// The share of requests recorded, from 0 (none) to 1 (all).
    public var sampleRate: Double
    public var collectInputs: Bool
    public var collectOutputs: Bool
    /// How the records are written; nil is `fleet`, and is left out of the JSON so that
    /// states without it stay byte for byte what they were.
    public var format: TelemetryFormat?
    /// Input summaries for drift (docs/drift.md); nil for none. Absent from the JSON when
    /// nil, so states without it keep their exact bytes.
    public var drift: DriftSettings?

    public init(
        sampleRate: Double = 0, collectInputs: Bool = false, collectOutputs: Bool = false, format: TelemetryFormat? = nil,
        drift: DriftSettings? = nil
    ) {
        self.sampleRate = sampleRate
        self.collectInputs = collectInputs
        self.collectOutputs = collectOutputs
        self.format = format
        self.drift = drift
    }
}
