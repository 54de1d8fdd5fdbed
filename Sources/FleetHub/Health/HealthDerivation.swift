import FleetCore
import Foundation

/// What the hub stored about one device: its latest report and connection state.
public struct StoredHealth: Equatable, Sendable {
    public var report: HealthReport?
    public var reportedAt: Date?
    public var lastSeenAt: Date
    /// The last connection state received; nil before any.
    public var online: Bool?
    public var connectionChangedAt: Date?

    public init(report: HealthReport?, reportedAt: Date?, lastSeenAt: Date, online: Bool?, connectionChangedAt: Date?) {
        self.report = report
        self.reportedAt = reportedAt
        self.lastSeenAt = lastSeenAt
        self.online = online
        self.connectionChangedAt = connectionChangedAt
    }
}

/// Pure rules from stored reports to online/offline, rollouts and alerts, so they
/// are tested without a broker or a clock.
public enum HealthDerivation {
    /// Online while the device's messages keep arriving within the heartbeat timeout
    /// and its last word was not the offline last will (a report after the will means
    /// it is back).
    public static func connectivity(of stored: StoredHealth?, now: Date, policy: HealthPolicy) -> (Connectivity, offlineSince: Date?) {
        guard let stored else { return (.unknown, nil) }
        if stored.online == false, let changed = stored.connectionChangedAt,
            (stored.reportedAt.map { $0 <= changed } ?? true)
        {
            return (.offline, changed)
        }
        let silentSince = stored.lastSeenAt.addingTimeInterval(policy.heartbeatTimeout(announced: stored.report?.reportIntervalSeconds))
        return silentSince < now ? (.offline, silentSince) : (.online, nil)
    }

    /// - Parameter labels: how to name a bundle digest to people (`iris-scorer:2 (model iris:3)`).
    public static func summary(
        of device: Device, stored: StoredHealth?, now: Date, policy: HealthPolicy, labels: [ContentDigest: String] = [:]
    ) -> DeviceHealthSummary {
        let (connectivity, offlineSince) = connectivity(of: stored, now: now, policy: policy)
        let modules = stored?.report?.modules ?? []
        return DeviceHealthSummary(
            id: device.id, tags: device.tags, connectivity: connectivity,
            reportedRevision: stored?.report?.desired.revision, revisionStatus: stored?.report?.desired.status,
            desiredRevision: device.revision, modulesRunning: modules.filter { $0.status == .running }.count,
            modulesTotal: modules.count, restarts: modules.reduce(0) { $0 + $1.restarts }, lastSeen: stored?.lastSeenAt,
            offlineSince: offlineSince, running: modules.map { moduleLabel($0, labels: labels) })
    }

    /// Where a device stands with a deployment, given the revision the hub staged for
    /// it and its latest report.
    public static func rolloutState(
        of deployment: ResolvedDeployment, desiredRevision: Int?, report: HealthReport?
    ) -> RolloutState {
        rolloutState(
            ofModules: Set(deployment.modules.map(\.name)),
            shouldRun: deployment.modules.filter { $0.desiredStatus == .running }.map(\.name),
            desiredRevision: desiredRevision, report: report)
    }

    /// Where a device stands with the deployment of modules `own`, of which `shouldRun`
    /// should be running: worked out once per deployment, not once per device.
    static func rolloutState(
        ofModules own: Set<String>, shouldRun: [String], desiredRevision: Int?, report: HealthReport?
    ) -> RolloutState {
        guard let report, let desiredRevision, report.desired.revision >= desiredRevision else { return .pending }
        // A revision covers every deployment layered on the device: another one's
        // failing module is not this deployment's failure.
        let blamesThis = report.desired.modules.map { !own.isDisjoint(with: $0) } ?? true
        switch report.desired.status {
        case .applying: return .pending
        case .failed where blamesThis: return .failed
        case .rolledBack where blamesThis: return .rolledBack
        case .applied, .failed, .rolledBack:
            let running = Set(report.modules.filter { $0.status == .running }.map(\.name))
            return shouldRun.allSatisfy(running.contains) ? .applied : .moduleNotRunning
        }
    }

    /// `iris: iris-scorer:2 (model iris:3)`, or the digest when the hub does not know it.
    public static func moduleLabel(_ module: ModuleHealth, labels: [ContentDigest: String]) -> String {
        "\(module.name): \(labels[module.bundleDigest] ?? module.bundleDigest.description)"
    }

    public static func rollout(
        of deployment: ResolvedDeployment, targeted: [String], desiredRevisions: [String: Int],
        reports: [String: HealthReport], labels: [ContentDigest: String] = [:]
    ) -> DeploymentRollout {
        let own = Set(deployment.modules.map(\.name))
        let shouldRun = deployment.modules.filter { $0.desiredStatus == .running }.map(\.name)
        let entries = targeted.sorted().map { deviceId in
            let report = reports[deviceId]
            let state = rolloutState(
                ofModules: own, shouldRun: shouldRun, desiredRevision: desiredRevisions[deviceId], report: report)
            return DeploymentRollout.Entry(
                deviceId: deviceId, state: state, desiredRevision: desiredRevisions[deviceId],
                reportedRevision: report?.desired.revision,
                error: state == .failed || state == .rolledBack ? report?.desired.error : nil,
                running: (report?.modules ?? []).filter { own.contains($0.name) }.map { moduleLabel($0, labels: labels) },
                progress: report?.desired.progress, retry: state == .failed ? report?.desired.retry : nil)
        }
        var counts = Dictionary(uniqueKeysWithValues: RolloutState.allCases.map { ($0.rawValue, 0) })
        for entry in entries { counts[entry.state.rawValue, default: 0] += 1 }
        return DeploymentRollout(deployment: deployment.name, targeted: entries.count, counts: counts, devices: entries)
    }

    public static func alerts(
        summaries: [DeviceHealthSummary], reports: [String: HealthReport], rollouts: [DeploymentRollout], now: Date,
        policy: HealthPolicy
    ) -> [HealthAlert] {
        var alerts: [HealthAlert] = []
        for summary in summaries {
            if let since = summary.offlineSince, now.timeIntervalSince(since) > policy.offlineAlertAfter {
                alerts.append(HealthAlert(
                    kind: .deviceOffline, subject: summary.id,
                    message: "device \(summary.id) offline for \(Self.duration(now.timeIntervalSince(since)))"))
            }
            for module in reports[summary.id]?.modules ?? []
            where (module.status == .backoff || module.status == .failed) && module.restarts >= policy.restartLoopRestarts {
                let error = module.lastError.map { ": \($0)" } ?? ""
                alerts.append(HealthAlert(
                    kind: .restartLoop, subject: "\(summary.id)/\(module.name)",
                    message: "module \(module.name) on \(summary.id) is \(module.status.rawValue) after \(module.restarts) restarts\(error)"))
            }
        }
        for rollout in rollouts where rollout.targeted > 0 {
            let failing = rollout.count(.failed) + rollout.count(.rolledBack)
            let rate = Double(failing) / Double(rollout.targeted)
            if failing > 0, rate > policy.deploymentFailureRate {
                alerts.append(HealthAlert(
                    kind: .deploymentFailing, subject: rollout.deployment,
                    message: "deployment \(rollout.deployment) failed or rolled back on \(failing) of \(rollout.targeted) devices (\(Int((rate * 100).rounded()))%)"))
            }
        }
        return alerts
    }

    static func duration(_ seconds: TimeInterval) -> String {
        let total = Int(seconds)
        if total < 120 { return "\(total)s" }
        if total < 7200 { return "\(total / 60)m" }
        return "\(total / 3600)h\(total % 3600 / 60)m"
    }
}
