import FleetCore
import Foundation

/// A deployment as stored after `fleethub deploy`: the manifest with every bundle
/// reference resolved to the digest, size and kind of that packaged module.
public struct ResolvedDeployment: Codable, Equatable, Sendable {
    public var name: String
    /// The deployment version this is (1, 2, 3 … per name); each `fleethub deploy` and
    /// `deployment rollback` makes the next one.
    public var version: Int
    public var priority: Int
    /// The target as the manifest wrote it.
    public var target: String
    /// The target, parsed once when the deployment is made or read back, so that no
    /// later use can meet (and hide) a parse error.
    public let targetExpression: TargetExpression
    public var modules: [Module]
    /// How this version reaches the devices; nil: all at once.
    public var rollout: RolloutPolicy?
    /// Deploy order: on equal priority, the deployment created later wins.
    public var sequence: Int64
    public var createdAt: Date
    public var updatedAt: Date

    /// Throws `TargetSyntaxError` when `target` is not a target expression.
    public init(
        name: String, version: Int = 1, priority: Int, target: String, modules: [Module], rollout: RolloutPolicy? = nil,
        sequence: Int64, createdAt: Date, updatedAt: Date
    ) throws {
        self.name = name
        self.version = version
        self.priority = priority
        self.target = target
        targetExpression = try TargetExpression(parsing: target)
        self.modules = modules
        self.rollout = rollout
        self.sequence = sequence
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    private enum CodingKeys: String, CodingKey {
        case name, version, priority, target, modules, rollout, sequence, createdAt, updatedAt
    }

    /// Reads a stored deployment; a stored target that no longer parses is an error here,
    /// naming the deployment, not a deployment that silently matches no device.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let name = try container.decode(String.self, forKey: .name)
        let target = try container.decode(String.self, forKey: .target)
        do {
            try self.init(
                name: name, version: try container.decode(Int.self, forKey: .version),
                priority: try container.decode(Int.self, forKey: .priority), target: target,
                modules: try container.decode([Module].self, forKey: .modules),
                rollout: try container.decodeIfPresent(RolloutPolicy.self, forKey: .rollout),
                sequence: try container.decode(Int64.self, forKey: .sequence),
                createdAt: try container.decode(Date.self, forKey: .createdAt),
                updatedAt: try container.decode(Date.self, forKey: .updatedAt))
        } catch let error as TargetSyntaxError {
            throw DecodingError.dataCorruptedError(forKey: .target, in: container, debugDescription: "deployment '\(name)': \(error)")
        }
    }

    /// This version with every module's shadow made the live bundle, as a rollout's
    /// `promoteWhen` does on a wave's devices.
    public var promoted: ResolvedDeployment {
        var copy = self
        copy.modules = modules.map { module in
            guard let shadow = module.shadow else { return module }
            var live = module
            live.bundle = shadow.bundle
            live.digest = shadow.digest
            live.size = shadow.size
            live.models = shadow.models
            live.shadow = nil
            return live
        }
        return copy
    }

    public struct Module: Codable, Equatable, Sendable {
        public var name: String
        /// The packaged module `name:version` the manifest named.
        public var bundle: String
        public var kind: ModuleKind
        public var digest: ContentDigest
        public var size: Int
        public var desiredStatus: DesiredStatus
        public var restartPolicy: RestartPolicy
        public var startupOrder: Int
        public var workers: Int
        public var env: [String: String]
        public var telemetry: TelemetrySettings
        /// The models packaged in the bundle, `name:version`, so people see which
        /// device runs which model (`iris-scorer:2 (model iris:3)`).
        public var models: [String]?
        public var shadow: Shadow?

        public init(
            name: String, bundle: String, kind: ModuleKind, digest: ContentDigest, size: Int,
            desiredStatus: DesiredStatus, restartPolicy: RestartPolicy, startupOrder: Int, workers: Int,
            env: [String: String], telemetry: TelemetrySettings, models: [String]? = nil, shadow: Shadow? = nil
        ) {
            self.name = name
            self.bundle = bundle
            self.kind = kind
            self.digest = digest
            self.size = size
            self.desiredStatus = desiredStatus
            self.restartPolicy = restartPolicy
            self.startupOrder = startupOrder
            self.workers = workers
            self.env = env
            self.telemetry = telemetry
            self.models = models
            self.shadow = shadow
        }

        /// `iris-scorer:2 (model iris:3)`: the bundle and the models in it.
        public var label: String { ModuleLabel.text(bundle: bundle, models: models) }

        /// The module as a device receives it, downloading bundles from `bundleURLs`.
        func spec(bundleURLs: (ContentDigest) -> [String]) -> ModuleSpec {
            ModuleSpec(
                name: name, kind: kind, bundle: BundleReference(digest: digest, size: size, urls: bundleURLs(digest)),
                desiredStatus: desiredStatus, restartPolicy: restartPolicy, startupOrder: startupOrder,
                workers: workers, env: env, telemetry: telemetry,
                shadow: shadow.map { shadow in
                    ShadowSpec(
                        bundle: BundleReference(digest: shadow.digest, size: shadow.size, urls: bundleURLs(shadow.digest)),
                        sampleRate: shadow.sampleRate, workers: shadow.workers)
                })
        }
    }

    /// A module's shadow, resolved like the live bundle.
    public struct Shadow: Codable, Equatable, Sendable {
        public var bundle: String
        public var digest: ContentDigest
        public var size: Int
        public var models: [String]?
        public var sampleRate: Double
        public var workers: Int

        public init(bundle: String, digest: ContentDigest, size: Int, models: [String]?, sampleRate: Double, workers: Int) {
            self.bundle = bundle
            self.digest = digest
            self.size = size
            self.models = models
            self.sampleRate = sampleRate
            self.workers = workers
        }

        public var label: String { ModuleLabel.text(bundle: bundle, models: models) }
    }
}

/// How modules are named to people: the packaged bundle with the models in it.
public enum ModuleLabel {
    public static func text(bundle: String, models: [String]?) -> String {
        guard let models, !models.isEmpty else { return bundle }
        return "\(bundle) (model\(models.count > 1 ? "s" : "") \(models.joined(separator: ", ")))"
    }
}
