import FleetCore
import Foundation

/// A deployment as stored after `fleethub deploy`: the manifest with every bundle
/// reference resolved to the digest, size and kind of that packaged module.
public struct ResolvedDeployment: Codable, Equatable, Sendable {
    public var name: String
    public var priority: Int
    public var target: String
    public var modules: [Module]
    /// Deploy order: on equal priority, the deployment created later wins.
    public var sequence: Int64
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        name: String, priority: Int, target: String, modules: [Module], sequence: Int64, createdAt: Date, updatedAt: Date
    ) {
        self.name = name
        self.priority = priority
        self.target = target
        self.modules = modules
        self.sequence = sequence
        self.createdAt = createdAt
        self.updatedAt = updatedAt
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

        public init(
            name: String, bundle: String, kind: ModuleKind, digest: ContentDigest, size: Int,
            desiredStatus: DesiredStatus, restartPolicy: RestartPolicy, startupOrder: Int, workers: Int,
            env: [String: String], telemetry: TelemetrySettings
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
        }

        /// The module as a device receives it, downloading from `bundleURL`.
        func spec(bundleURL: String) -> ModuleSpec {
            ModuleSpec(
                name: name, kind: kind, bundle: BundleReference(digest: digest, size: size, url: bundleURL),
                desiredStatus: desiredStatus, restartPolicy: restartPolicy, startupOrder: startupOrder,
                workers: workers, env: env, telemetry: telemetry)
        }
    }
}
