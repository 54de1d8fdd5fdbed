import FleetCore
import Foundation

/// Every device's summary, restart-loop alerts and rollout entries as the last read
/// derived them, kept by `FleetReadCache` so that a read at 10,000 devices derives again
/// only the devices whose stored health it brought in and those whose heartbeat ran
/// out (or, for an earlier `now`, had not yet) in between; everything only when the
/// device list, the module labels or the policy changed. It always equals what
/// `HealthDerivation` makes of the whole fleet at the same `now` (FleetReadCacheTests).
struct DerivedFleet {
    let policy: HealthPolicy
    /// The time the summaries are derived for.
    private(set) var now: Date
    /// In the device list's order.
    private(set) var summaries: [DeviceHealthSummary] = []
    /// The rollout of each deployment, in the order of the last deployment list.
    var rollouts: [DeploymentRollout] { derivedRollouts.map(\.rollout) }
    /// Per device: the restart-loop alerts of its latest report.
    private var restartLoops: [[HealthAlert]] = []
    /// Per device: when its heartbeat runs out (`HealthDerivation.heartbeatEnd`), in
    /// seconds since the reference date; infinity when its connectivity does not depend on the time.
    private var heartbeatEnds: [Double] = []
    private var position: [String: Int] = [:]
    private var desiredRevisions: [String: Int] = [:]
    private var derivedRollouts: [DerivedRollout] = []

    /// One deployment's rollout with where each device's entry is in it.
    private struct DerivedRollout {
        let deployment: ResolvedDeployment
        let own: Set<String>
        let shouldRun: [String]
        var rollout: DeploymentRollout
        let position: [String: Int]

        init(_ deployment: ResolvedDeployment, contents: FleetReadCache.Contents, desiredRevisions: [String: Int]) {
            self.deployment = deployment
            own = Set(deployment.modules.map(\.name))
            shouldRun = deployment.modules.filter { $0.desiredStatus == .running }.map(\.name)
            rollout = HealthDerivation.rollout(
                of: deployment, targeted: contents.targeted.ids(of: deployment, in: contents.devices),
                desiredRevisions: desiredRevisions, reports: contents.reports, labels: contents.labels)
            position = Dictionary(uniqueKeysWithValues: rollout.devices.enumerated().map { ($1.deviceId, $0) })
        }

        mutating func update(_ deviceIds: Set<String>, contents: FleetReadCache.Contents, desiredRevisions: [String: Int]) {
            for deviceId in deviceIds {
                guard let index = position[deviceId] else { continue }
                let entry = HealthDerivation.rolloutEntry(
                    deviceId: deviceId, ofModules: own, shouldRun: shouldRun, desiredRevision: desiredRevisions[deviceId],
                    report: contents.reports[deviceId], labels: contents.labels)
                rollout.counts[rollout.devices[index].state.rawValue, default: 0] -= 1
                rollout.counts[entry.state.rawValue, default: 0] += 1
                rollout.devices[index] = entry
            }
        }
    }

    /// Everything derived afresh from `contents`.
    init(_ contents: FleetReadCache.Contents, deployments: [ResolvedDeployment], policy: HealthPolicy, now: Date) {
        self.policy = policy
        self.now = now
        summaries.reserveCapacity(contents.devices.count)
        restartLoops.reserveCapacity(contents.devices.count)
        heartbeatEnds.reserveCapacity(contents.devices.count)
        for (index, device) in contents.devices.enumerated() {
            position[device.id] = index
            if let revision = device.revision { desiredRevisions[device.id] = revision }
            let (summary, restartLoop, heartbeatEnd) = Self.derive(device, contents: contents, policy: policy, now: now)
            summaries.append(summary)
            restartLoops.append(restartLoop)
            heartbeatEnds.append(heartbeatEnd)
        }
        derivedRollouts = deployments.map { DerivedRollout($0, contents: contents, desiredRevisions: desiredRevisions) }
    }

    /// Derives again the devices of `changed` (whose stored health changed), those whose
    /// connectivity differs between the last `now` and this one, and the rollouts of
    /// deployments that are new or changed.
    mutating func update(
        changed: Set<String>, contents: FleetReadCache.Contents, deployments: [ResolvedDeployment], now: Date
    ) {
        var again = changed.compactMap { position[$0] }
        if now != self.now {
            // Offline by heartbeat exactly when its end is before `now`: only ends between the two times flip.
            let low = min(now, self.now).timeIntervalSinceReferenceDate
            let high = max(now, self.now).timeIntervalSinceReferenceDate
            for (index, end) in heartbeatEnds.enumerated() where end >= low && end < high { again.append(index) }
            self.now = now
        }
        for index in again { derive(index, contents: contents) }
        let previous = Dictionary(derivedRollouts.map { ($0.deployment.name, $0) }, uniquingKeysWith: { first, _ in first })
        derivedRollouts = deployments.map { deployment in
            guard var rollout = previous[deployment.name], rollout.deployment == deployment else {
                return DerivedRollout(deployment, contents: contents, desiredRevisions: desiredRevisions)
            }
            rollout.update(changed, contents: contents, desiredRevisions: desiredRevisions)
            return rollout
        }
    }

    /// The alerts about devices, in device order: offline too long, then restart loops.
    func deviceAlerts() -> [HealthAlert] {
        var alerts: [HealthAlert] = []
        for index in summaries.indices {
            if let offline = HealthDerivation.offlineAlert(of: summaries[index], now: now, policy: policy) {
                alerts.append(offline)
            }
            alerts += restartLoops[index]
        }
        return alerts
    }

    private mutating func derive(_ index: Int, contents: FleetReadCache.Contents) {
        (summaries[index], restartLoops[index], heartbeatEnds[index]) = Self.derive(
            contents.devices[index], contents: contents, policy: policy, now: now)
    }

    private static func derive(
        _ device: Device, contents: FleetReadCache.Contents, policy: HealthPolicy, now: Date
    ) -> (DeviceHealthSummary, [HealthAlert], Double) {
        let stored = contents.stored[device.id]
        return (
            HealthDerivation.summary(of: device, stored: stored, now: now, policy: policy, labels: contents.labels),
            HealthDerivation.restartLoopAlerts(deviceId: device.id, report: stored?.report, policy: policy),
            HealthDerivation.heartbeatEnd(of: stored, policy: policy)?.timeIntervalSinceReferenceDate ?? .infinity)
    }
}
