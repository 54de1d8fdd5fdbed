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
        if let changed = lastWill(of: stored) { return (.offline, changed) }
        let silent = silentSince(of: stored, policy: policy)
        return silent < now ? (.offline, silent) : (.online, nil)
    }

    /// When the device turns offline for want of messages (it is online until then and
    /// offline after); nil when its connectivity does not depend on the time: it never
    /// sent anything, or its last word was the offline last will.
    static func heartbeatEnd(of stored: StoredHealth?, policy: HealthPolicy) -> Date? {
        guard let stored, lastWill(of: stored) == nil else { return nil }
        return silentSince(of: stored, policy: policy)
    }

    private static func silentSince(of stored: StoredHealth, policy: HealthPolicy) -> Date {
        stored.lastSeenAt.addingTimeInterval(policy.heartbeatTimeout(announced: stored.report?.reportIntervalSeconds))
    }

    /// When the device's offline last will arrived, if it was its last word.
    private static func lastWill(of stored: StoredHealth) -> Date? {
        guard stored.online == false, let changed = stored.connectionChangedAt,
            stored.reportedAt.map({ $0 <= changed }) ?? true
        else { return nil }
        return changed
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
            rolloutEntry(
                deviceId: deviceId, ofModules: own, shouldRun: shouldRun, desiredRevision: desiredRevisions[deviceId],
                report: reports[deviceId], labels: labels)
        }
        var counts = Dictionary(uniqueKeysWithValues: RolloutState.allCases.map { ($0.rawValue, 0) })
        for entry in entries { counts[entry.state.rawValue, default: 0] += 1 }
        return DeploymentRollout(deployment: deployment.name, targeted: entries.count, counts: counts, devices: entries)
    }

    /// One device's line of a rollout of the deployment of modules `own` (see `rolloutState`).
    static func rolloutEntry(
        deviceId: String, ofModules own: Set<String>, shouldRun: [String], desiredRevision: Int?, report: HealthReport?,
        labels: [ContentDigest: String]
    ) -> DeploymentRollout.Entry {
        let state = rolloutState(ofModules: own, shouldRun: shouldRun, desiredRevision: desiredRevision, report: report)
        return DeploymentRollout.Entry(
            deviceId: deviceId, state: state, desiredRevision: desiredRevision, reportedRevision: report?.desired.revision,
            error: state == .failed || state == .rolledBack ? report?.desired.error : nil,
            running: (report?.modules ?? []).filter { own.contains($0.name) }.map { moduleLabel($0, labels: labels) },
            progress: report?.desired.progress, retry: state == .failed ? report?.desired.retry : nil)
    }

    public static func alerts(
        summaries: [DeviceHealthSummary], reports: [String: HealthReport], rollouts: [DeploymentRollout], now: Date,
        policy: HealthPolicy
    ) -> [HealthAlert] {
        var alerts: [HealthAlert] = []
        for summary in summaries {
            if let offline = offlineAlert(of: summary, now: now, policy: policy) { alerts.append(offline) }
            alerts += restartLoopAlerts(deviceId: summary.id, report: reports[summary.id], policy: policy)
        }
        return alerts + deploymentAlerts(rollouts: rollouts, policy: policy)
    }

    /// The alert of a device offline for longer than the policy allows, nil when it is not.
    static func offlineAlert(of summary: DeviceHealthSummary, now: Date, policy: HealthPolicy) -> HealthAlert? {
        guard let since = summary.offlineSince, now.timeIntervalSince(since) > policy.offlineAlertAfter else { return nil }
        return HealthAlert(
            kind: .deviceOffline, subject: summary.id,
            message: "device \(summary.id) offline for \(Self.duration(now.timeIntervalSince(since)))")
    }

    /// An alert per module of `report` that backs off or failed after too many restarts.
    static func restartLoopAlerts(deviceId: String, report: HealthReport?, policy: HealthPolicy) -> [HealthAlert] {
        (report?.modules ?? []).filter {
            ($0.status == .backoff || $0.status == .failed) && $0.restarts >= policy.restartLoopRestarts
        }.map { module in
            let error = module.lastError.map { ": \($0)" } ?? ""
            return HealthAlert(
                kind: .restartLoop, subject: "\(deviceId)/\(module.name)",
                message: "module \(module.name) on \(deviceId) is \(module.status.rawValue) after \(module.restarts) restarts\(error)")
        }
    }

    /// An alert per deployment failed or rolled back on more than the policy's share of its targets.
    static func deploymentAlerts(rollouts: [DeploymentRollout], policy: HealthPolicy) -> [HealthAlert] {
        rollouts.compactMap { rollout in
            let failing = rollout.count(.failed) + rollout.count(.rolledBack)
            guard rollout.targeted > 0, failing > 0 else { return nil }
            let rate = Double(failing) / Double(rollout.targeted)
            guard rate > policy.deploymentFailureRate else { return nil }
            return HealthAlert(
                kind: .deploymentFailing, subject: rollout.deployment,
                message: "deployment \(rollout.deployment) failed or rolled back on \(failing) of \(rollout.targeted) devices (\(Int((rate * 100).rounded()))%)")
        }
    }

    static func duration(_ seconds: TimeInterval) -> String {
        let total = Int(seconds)
        if total < 120 { return "\(total)s" }
        if total < 7200 { return "\(total / 60)m" }
        return "\(total / 3600)h\(total % 3600 / 60)m"
    }
}
