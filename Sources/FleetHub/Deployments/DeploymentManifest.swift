import FleetCore
import Foundation

/// A deployment as an operator writes it in YAML (`manifests/*.yaml`): which modules,
/// with which settings, on which devices, at which priority.
public struct DeploymentManifest: Codable, Equatable, Sendable {
    public var name: String
    /// When several deployments target one device, per module name the higher priority wins.
    public var priority: Int
    /// A `TargetExpression` over device tags.
    public var target: String
    public var modules: [Module]
    /// How a new version reaches the targeted devices; nil: all of them at once.
    public var rollout: RolloutPolicy?

    public init(name: String, priority: Int, target: String, modules: [Module], rollout: RolloutPolicy? = nil) {
        self.name = name
        self.priority = priority
        self.target = target
        self.modules = modules
        self.rollout = rollout
    }

    /// One module of a deployment; `bundle` is a packaged module `name:version`.
    public struct Module: Codable, Equatable, Sendable {
        public var name: String
        public var bundle: String
        public var desiredStatus: DesiredStatus
        public var restartPolicy: RestartPolicy
        public var startupOrder: Int
        public var workers: Int
        public var env: [String: String]
        public var telemetry: TelemetrySettings
        /// A challenger `name:version` evaluated beside `bundle` on the device.
        public var shadow: Shadow?
    }

    /// `shadow: {bundle: iris-scorer:2, sampleRate: 0.25}`.
    public struct Shadow: Codable, Equatable, Sendable {
        public var bundle: String
        public var sampleRate: Double
        public var workers: Int
    }
}

/// A parsed manifest, with where each field was found, so later checks (unknown
/// bundles) can still name the file and line.
public struct ParsedManifest: Sendable {
    public var manifest: DeploymentManifest
    public var file: String
    /// The YAML as written, kept in the deployment's history.
    public var text: String
    /// The line of each field path (e.g. `modules[0].bundle`).
    public var lines: [String: Int]

    func error(_ field: String, _ problem: String) -> ManifestError {
        ManifestError.invalid(file: file, line: lines[field], field: field, problem: problem)
    }
}

/// Why a deployment manifest was refused: always names the file, and the line and
/// field when there is one.
public enum ManifestError: Error, Equatable, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    case malformedYAML(file: String, detail: String)
    case invalid(file: String, line: Int?, field: String, problem: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): "cannot read manifest \(file): \(reason)"
        case .malformedYAML(let file, let detail): "\(file): malformed YAML: \(detail)"
        case .invalid(let file, let line, let field, let problem):
            "\(file)\(line.map { ":\($0)" } ?? ""): field '\(field)': \(problem)"
        }
    }
}
