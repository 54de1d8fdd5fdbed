import FleetCore
import Foundation

/// Whether the hub currently hears from a device.
public enum Connectivity: String, Codable, Sendable, CaseIterable {
    case online, offline
    /// The device never sent a report or connection state.
    case unknown
}

/// One line of `fleethub devices`: a device as the hub last heard from it.
public struct DeviceHealthSummary: Codable, Equatable, Sendable {
    public var id: String
    public var tags: [String: String]
    public var connectivity: Connectivity
    /// The revision the device last reported (applied, failed or rolled back).
    public var reportedRevision: Int?
    /// How the device handled `reportedRevision`.
    public var revisionStatus: DesiredStateStatus.Status?
    /// The revision the hub staged for the device.
    public var desiredRevision: Int?
    public var modulesRunning: Int
    public var modulesTotal: Int
    public var restarts: Int
    /// When the hub last received anything from the device.
    public var lastSeen: Date?
    /// When the device went offline (last will, or the heartbeat timeout ran out).
    public var offlineSince: Date?
    /// Each module it reports, as `iris: iris-scorer:2 (model iris:3)`.
    public var running: [String]
}

/// `fleethub device show`: the summary, the latest report and the recent history.
public struct DeviceHealthDetail: Codable, Equatable, Sendable {
    public var summary: DeviceHealthSummary
    public var report: HealthReport?
    /// Oldest first.
    public var history: [HealthSample]
    /// The PSI of each input feature of its modules, from its latest drift windows.
    public var drift: [FeatureDrift] = []
}

/// One stored report, reduced to what the dashboard charts.
public struct HealthSample: Codable, Equatable, Sendable {
    public var receivedAt: Date
    public var cpuPercent: Double
    public var memUsedBytes: Int64
    public var modulesRunning: Int
    public var restarts: Int
    public var telemetryBuffered: Int
    public var p99Ms: Double?
}

/// Where one targeted device stands with a deployment.
public enum RolloutState: String, Codable, Sendable, CaseIterable {
    /// The device has not yet reported the revision the hub staged for it.
    case pending
    case applied
    case failed
    case rolledBack = "rolled-back"
    /// The revision is applied but a module of this deployment that should run does not.
    case moduleNotRunning = "module-not-running"
}

/// `fleethub deployment status`: how far a deployment got on the devices it targets.
public struct DeploymentRollout: Codable, Equatable, Sendable {
    public struct Entry: Codable, Equatable, Sendable {
        public var deviceId: String
        public var state: RolloutState
        public var desiredRevision: Int?
        public var reportedRevision: Int?
        public var error: String?
        /// This deployment's modules as the device reports them, `iris: iris-scorer:2 (model iris:3)`.
        public var running: [String]
        /// The step the device is on while it applies its desired state, as it last reported it.
        public var progress: ApplyProgress? = nil
        /// When a device whose revision failed tries again, as it last reported it.
        public var retry: ApplyRetry? = nil
        /// The PSI of each input feature of this deployment's modules on the device; nil when none.
        public var drift: [FeatureDrift]? = nil
    }

    public var deployment: String
    public var targeted: Int
    /// Devices per state; every state is present, with 0 when none.
    public var counts: [String: Int]
    public var devices: [Entry]

    public func count(_ state: RolloutState) -> Int { counts[state.rawValue] ?? 0 }
}

/// Something an operator should look at.
public struct HealthAlert: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case deviceOffline = "device-offline"
        case restartLoop = "restart-loop"
        case deploymentFailing = "deployment-failing"
        case rolloutHalted = "rollout-halted"
        case revocationListExpiring = "revocation-list-expiring"
        case httpsCertificateExpiring = "https-certificate-expiring"
        case inputDrift = "input-drift"
    }

    public var kind: Kind
    /// The device (or device/module) or deployment it is about.
    public var subject: String
    public var message: String
}

/// Messages the hub refused, by reason, as `/metrics` and `fleethub alerts` show them.
public struct RejectionCount: Codable, Equatable, Sendable {
    public var reason: String
    public var count: Int
    public var lastTopic: String
    public var lastError: String
    public var lastAt: Date
}

/// The fleet at a glance, for the dashboard's overview and its live updates.
public struct FleetOverview: Codable, Equatable, Sendable {
    public var devices: Int
    public var online: Int
    public var offline: Int
    public var unknown: Int
    public var alerts: [HealthAlert]
    public var rollouts: [DeploymentRollout]
    /// The latest staged rollout of each deployment that has one.
    public var stagedRollouts: [Rollout]
}
