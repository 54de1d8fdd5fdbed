import FleetCore
import Foundation

/// What the hub knows of one device of a rollout when it evaluates it.
public struct RolloutObservation: Sendable {
    public var deviceId: String
    /// The first desired revision that carried the device's assignment; 0 until staged.
    public var assignedRevision: Int
    public var assignedAt: Date
    /// Whether the device was given the promoted content (shadows made live).
    public var promoted: Bool
    public var report: HealthReport?
    public var connectivity: Connectivity
    public var offlineSince: Date?

    public init(
        deviceId: String, assignedRevision: Int, assignedAt: Date, promoted: Bool, report: HealthReport?,
        connectivity: Connectivity, offlineSince: Date?
    ) {
        self.deviceId = deviceId
        self.assignedRevision = assignedRevision
        self.assignedAt = assignedAt
        self.promoted = promoted
        self.report = report
        self.connectivity = connectivity
        self.offlineSince = offlineSince
    }
}

/// The rules of a rollout, pure: from the rollout, the version it rolls out and what
/// the updated devices reported, to each device's state, each criterion's value and
/// the next step. No database, broker or clock, so every rule is tested alone.
public enum RolloutEvaluation {
    public enum Decision: Equatable, Sendable {
        /// Wait for the devices.
        case hold
        /// Every updated device is healthy: the soak runs (or goes on) since this time.
        case soak(since: Date)
        /// The soak is over: publish the next wave.
        case advance
        /// The last wave soaked: the version becomes the deployment's stable version.
        case complete
        /// Make the shadows live on these devices of the current wave.
        case promote([String])
        /// A criterion failed.
        case halt(reason: String)
    }

    public struct Outcome: Equatable, Sendable {
        public var states: [String: RolloutDeviceState]
        public var criteria: [RolloutCriterion]
        public var shadow: RolloutStatus.ShadowSummary?
        public var decision: Decision
    }

    public static func evaluate(
        _ rollout: Rollout, version: ResolvedDeployment, observations: [String: RolloutObservation], now: Date
    ) -> Outcome {
        let policy = rollout.policy
        let updated = Array(rollout.updatedDevices)
        var states: [String: RolloutDeviceState] = [:]
        for id in rollout.devices { states[id] = .waiting }
        for id in updated {
            guard let observation = observations[id] else {
                states[id] = .pending
                continue
            }
            let content = observation.promoted ? version.promoted : version
            states[id] = deviceState(of: content, observation, now: now, timeout: TimeInterval(policy.abort.timeoutSeconds))
        }

        var criteria: [RolloutCriterion] = []
        var breaches: [String] = []
        func check(_ criterion: RolloutCriterion) {
            criteria.append(criterion)
            if !criterion.ok { breaches.append("\(criterion.name): \(criterion.detail)") }
        }

        let failing = updated.filter { states[$0]?.isFailure == true }
        let failedShare = updated.isEmpty ? 0 : 100 * Double(failing.count) / Double(updated.count)
        let failedBreached = failing.count >= policy.abort.minDevices && failedShare > policy.abort.failedPercent
        check(RolloutCriterion(
            name: "failedPercent", value: failedShare,
            threshold: policy.abort.failedPercent == 0 && policy.abort.minDevices == 1
                ? "no updated device fails"
                : "at most \(format(policy.abort.failedPercent))%, or fewer than \(policy.abort.minDevices) devices",
            ok: !failedBreached,
            detail: "\(failing.count) of \(updated.count) updated devices failed, rolled back or timed out (\(format(failedShare))%)"
                + (failing.isEmpty ? "" : ": " + failing.prefix(5).map { "\($0) \(states[$0]!.rawValue)" }.joined(separator: ", "))))

        let current = figures(of: version, on: updated, observations: observations)
        if let factor = policy.abort.errorRateFactor {
            check(errorRateCriterion(current: current, baseline: rollout.baseline, factor: factor))
        }
        if let factor = policy.abort.p99Factor {
            check(p99Criterion(current: current, baseline: rollout.baseline, factor: factor))
        }

        let shadow = shadowSummary(of: version, on: updated, observations: observations)
        var promotable: [String] = []
        if let gate = policy.promoteWhen {
            let waiting = rollout.currentWaveDevices.filter { observations[$0]?.promoted != true }
            let record = shadowSummary(of: version, on: Array(waiting), observations: observations)
            let agreement = record?.agreement
            let enough = (record?.samples ?? 0) >= gate.minSamples
            let holds = agreement.map(gate.shadowAgreement.holds(for:)) ?? false
            check(RolloutCriterion(
                name: "shadowAgreement", value: agreement, threshold: "\(gate.shadowAgreement) over \(gate.minSamples) samples",
                ok: waiting.isEmpty || !enough || holds,
                detail: waiting.isEmpty
                    ? "every device of wave \(rollout.wave + 1) is promoted"
                    : "\(record?.samples ?? 0) samples compared on \(waiting.count) device(s) of wave \(rollout.wave + 1), agreement \(agreement.map(format) ?? "-")"))
            if enough, holds {
                promotable = waiting.filter { states[$0] == .healthy }
            }
            let broken = waiting.compactMap { id -> String? in
                guard let observation = observations[id],
                    let shadow = shadowHealth(of: version, on: observation), shadow.status != .running
                else { return nil }
                let waited = now.timeIntervalSince(observation.assignedAt) >= TimeInterval(policy.abort.timeoutSeconds)
                guard shadow.status == .failed || waited else { return nil }
                return "\(id) \(shadow.status.rawValue)\(shadow.lastError.map { ": \($0)" } ?? "")"
            }
            if !broken.isEmpty {
                check(RolloutCriterion(
                    name: "shadowRunning", value: nil, threshold: "every shadow running", ok: false,
                    detail: "the shadow cannot be evaluated on \(broken.prefix(5).joined(separator: ", "))"))
            }
            if !waiting.isEmpty, breaches.isEmpty {
                return Outcome(
                    states: states, criteria: criteria, shadow: shadow,
                    decision: promotable.isEmpty ? .hold : .promote(promotable))
            }
        }

        if !breaches.isEmpty {
            return Outcome(states: states, criteria: criteria, shadow: shadow, decision: .halt(reason: breaches.joined(separator: "; ")))
        }
        guard updated.allSatisfy({ states[$0] == .healthy }) else {
            return Outcome(states: states, criteria: criteria, shadow: shadow, decision: .hold)
        }
        let since = rollout.healthySince ?? now
        guard now.timeIntervalSince(since) >= TimeInterval(policy.soakSeconds) else {
            return Outcome(states: states, criteria: criteria, shadow: shadow, decision: .soak(since: since))
        }
        return Outcome(states: states, criteria: criteria, shadow: shadow, decision: rollout.isLastWave ? .complete : .advance)
    }

    /// Where one updated device stands with `content` (this deployment's modules only:
    /// a failure of another deployment's module on the same device is not this one's).
    public static func deviceState(
        of content: ResolvedDeployment, _ observation: RolloutObservation, now: Date, timeout: TimeInterval
    ) -> RolloutDeviceState {
        let state = rawState(of: content, observation)
        switch state {
        case .pending, .notRunning, .offline:
            let since = max(observation.assignedAt, observation.offlineSince ?? observation.assignedAt)
            return now.timeIntervalSince(since) >= timeout ? .timedOut : state
        default:
            return state
        }
    }

    private static func rawState(of content: ResolvedDeployment, _ observation: RolloutObservation) -> RolloutDeviceState {
        let offline = observation.connectivity == .offline
        guard observation.assignedRevision > 0, let report = observation.report,
            report.desired.revision >= observation.assignedRevision
        else { return offline ? .offline : .pending }
        let own = Set(content.modules.map(\.name))
        let blamesThis = report.desired.modules.map { !own.isDisjoint(with: $0) } ?? true
        switch report.desired.status {
        case .failed where blamesThis: return .failed
        case .rolledBack where blamesThis: return .rolledBack
        case .applying: return offline ? .offline : .pending
        default: break
        }
        if offline { return .offline }
        let running = Dictionary(report.modules.map { ($0.name, $0) }) { first, _ in first }
        let healthy = content.modules.filter { $0.desiredStatus == .running }.allSatisfy { module in
            guard let reported = running[module.name] else { return false }
            return reported.status == .running && reported.bundleDigest == module.digest
        }
        return healthy ? .healthy : .notRunning
    }

    /// The inference counters of `version`'s modules (by digest) on `devices`.
    public static func figures(
        of version: ResolvedDeployment, on devices: [String], observations: [String: RolloutObservation]
    ) -> InferenceFigures {
        var requests = 0
        var errors = 0
        var p99s: [Double] = []
        for id in devices {
            guard let observation = observations[id], let report = observation.report else { continue }
            let content = observation.promoted ? version.promoted : version
            let digests = Dictionary(content.modules.map { ($0.name, $0.digest) }) { first, _ in first }
            var deviceRequests = 0
            var deviceP99 = 0.0
            for module in report.modules where digests[module.name] == module.bundleDigest {
                guard let inference = module.inference else { continue }
                requests += inference.count
                errors += inference.errors
                deviceRequests += inference.count
                deviceP99 = max(deviceP99, inference.p99Ms)
            }
            if deviceRequests > 0 { p99s.append(deviceP99) }
        }
        return InferenceFigures(requests: requests, errors: errors, p99Ms: median(p99s))
    }

    /// The previous version's figures, from what every targeted device reports for the
    /// modules of this deployment when the rollout begins.
    public static func baseline(
        of previous: ResolvedDeployment?, reports: [String: HealthReport], devices: [String]
    ) -> InferenceFigures? {
        guard let previous else { return nil }
        let observations = Dictionary(uniqueKeysWithValues: devices.compactMap { id in
            reports[id].map {
                (id, RolloutObservation(
                    deviceId: id, assignedRevision: 0, assignedAt: .distantPast, promoted: false, report: $0,
                    connectivity: .online, offlineSince: nil))
            }
        })
        return figures(of: previous, on: devices, observations: observations)
    }

    static func errorRateCriterion(current: InferenceFigures, baseline: InferenceFigures?, factor: Double) -> RolloutCriterion {
        let threshold = "<= \(format(factor)) × previous (\(baseline?.errorRate.map(format) ?? "-")), and above \(format(AbortCriteria.errorRateFloor))"
        guard current.requests >= AbortCriteria.minimumRequests, let rate = current.errorRate else {
            return RolloutCriterion(
                name: "errorRateFactor", value: nil, threshold: threshold, ok: true,
                detail: "\(current.requests) requests so far; compared from \(AbortCriteria.minimumRequests)")
        }
        let base = baseline.flatMap { $0.requests >= AbortCriteria.minimumRequests ? $0.errorRate : nil } ?? 0
        let limit = max(base * factor, AbortCriteria.errorRateFloor)
        return RolloutCriterion(
            name: "errorRateFactor", value: rate, threshold: threshold, ok: rate <= limit,
            detail: "error rate \(format(rate)) over \(current.requests) requests against \(format(base)) before (limit \(format(limit)))")
    }

    static func p99Criterion(current: InferenceFigures, baseline: InferenceFigures?, factor: Double) -> RolloutCriterion {
        let threshold = "<= \(format(factor)) × previous (\(baseline?.p99Ms.map { format($0) + " ms" } ?? "-"))"
        guard current.requests >= AbortCriteria.minimumRequests, let p99 = current.p99Ms,
            let base = baseline?.p99Ms, base > 0, (baseline?.requests ?? 0) >= AbortCriteria.minimumRequests
        else {
            return RolloutCriterion(
                name: "p99Factor", value: current.p99Ms, threshold: threshold, ok: true,
                detail: "not enough requests to compare (\(current.requests) now, \(baseline?.requests ?? 0) before)")
        }
        return RolloutCriterion(
            name: "p99Factor", value: p99, threshold: threshold, ok: p99 <= base * factor,
            detail: "p99 \(format(p99)) ms against \(format(base)) ms before")
    }

    /// The shadow bundle of each of `version`'s modules that has one, by module name.
    static func shadowDigests(of version: ResolvedDeployment) -> [String: ContentDigest] {
        Dictionary(version.modules.compactMap { module in module.shadow.map { (module.name, $0.digest) } }) { first, _ in first }
    }

    /// What one device reports of the shadow of one of `version`'s modules.
    static func shadowHealth(of version: ResolvedDeployment, on observation: RolloutObservation) -> ShadowHealth? {
        let shadows = shadowDigests(of: version)
        return observation.report?.modules.lazy.compactMap { module in
            module.shadow.flatMap { shadows[module.name] == $0.bundleDigest ? $0 : nil }
        }.first
    }

    /// The shadows' counters summed over `devices` (only shadows of this version's bundles).
    static func shadowSummary(
        of version: ResolvedDeployment, on devices: [String], observations: [String: RolloutObservation]
    ) -> RolloutStatus.ShadowSummary? {
        let shadows = shadowDigests(of: version)
        guard !shadows.isEmpty else { return nil }
        var summary = RolloutStatus.ShadowSummary(samples: 0, agreed: 0, errors: 0, agreement: nil, p50Ms: nil, p99Ms: nil, promotedDevices: 0)
        var p50s: [Double] = []
        var p99s: [Double] = []
        for id in devices {
            guard let observation = observations[id] else { continue }
            if observation.promoted {
                summary.promotedDevices += 1
                continue
            }
            for module in observation.report?.modules ?? [] {
                guard let shadow = module.shadow, shadows[module.name] == shadow.bundleDigest else { continue }
                summary.samples += shadow.samples
                summary.agreed += shadow.agreed
                summary.errors += shadow.errors
                if shadow.samples > 0 {
                    p50s.append(shadow.p50Ms)
                    p99s.append(shadow.p99Ms)
                }
            }
        }
        summary.agreement = summary.samples > 0 ? Double(summary.agreed) / Double(summary.samples) : nil
        summary.p50Ms = median(p50s)
        summary.p99Ms = median(p99s)
        return summary
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e9 ? "\(Int(value))" : String(format: "%.4g", value)
    }
}
