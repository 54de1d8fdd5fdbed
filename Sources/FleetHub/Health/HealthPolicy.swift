import Foundation

/// The thresholds that turn stored reports into online/offline and alerts.
public struct HealthPolicy: Codable, Equatable, Sendable {
    /// A device that has sent nothing for this long counts as offline, even without
    /// its last will, unless it announced its report interval (3 × the runtime's
    /// default 30-second interval).
    public var heartbeatTimeout: TimeInterval
    /// A device offline for longer than this raises an alert.
    public var offlineAlertAfter: TimeInterval
    /// A module that is backing off or failed with at least this many restarts is in a restart loop.
    public var restartLoopRestarts: Int
    /// A deployment whose failed or rolled-back devices exceed this share of its targets raises an alert.
    public var deploymentFailureRate: Double
    /// An input feature whose PSI on a device exceeds this raises an `input-drift` alert.
    public var driftAlertPSI: Double

    public init(
        heartbeatTimeout: TimeInterval = 90, offlineAlertAfter: TimeInterval = 300, restartLoopRestarts: Int = 3,
        deploymentFailureRate: Double = 0.1, driftAlertPSI: Double = 0.2
    ) {
        self.heartbeatTimeout = heartbeatTimeout
        self.offlineAlertAfter = offlineAlertAfter
        self.restartLoopRestarts = restartLoopRestarts
        self.deploymentFailureRate = deploymentFailureRate
        self.driftAlertPSI = driftAlertPSI
    }

    /// How many report intervals of silence make a device offline: a healthy device
    /// never sits at the threshold.
    public static let missedReports = 3.0

    /// The heartbeat timeout of a device that announced `interval` seconds between
    /// reports: `missedReports` intervals; `heartbeatTimeout` when it announced none.
    public func heartbeatTimeout(announced interval: Int?) -> TimeInterval {
        interval.map { Self.missedReports * TimeInterval(max(1, $0)) } ?? heartbeatTimeout
    }
}
