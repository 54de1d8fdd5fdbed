import FleetCore
import Foundation
import FleetSQL

/// Rollouts in the hub database: started by a deploy, advanced by `fleethub serve`
/// (`advance`), steered by `fleethub rollout pause|resume|abort|promote`. Every step
/// changes the rollout, the devices' assignments and their staged desired states in
/// one transaction; publishing what was staged is left to the caller.
public struct RolloutStore: Sendable {
    public let workspace: Workspace
    public var policy: HealthPolicy

    public init(workspace: Workspace, policy: HealthPolicy? = nil) {
        self.workspace = workspace
        self.policy = policy ?? workspace.healthPolicy
    }

    // MARK: - Reading

    /// The latest rollout of a deployment.
    public func latest(deployment name: String) throws -> Rollout {
        try workspace.database.read { db in
            guard let rollout = try Self.latest(deployment: name, db: db) else {
                if try db.value(as: Int.self, "SELECT 1 FROM deploymentVersion WHERE deployment = ?", [name]) == nil {
                    throw DeploymentError.unknownDeployment(name)
                }
                throw DeploymentError.noRollout(name)
            }
            return rollout
        }
    }

    /// The latest rollout of every deployment that has one.
    public func all() throws -> [Rollout] {
        try workspace.database.read { db in
            try db.values(
                as: String.self,
                "SELECT record FROM rollout WHERE id IN (SELECT MAX(id) FROM rollout GROUP BY deployment) ORDER BY deployment"
            ).map(Self.decode)
        }
    }

    /// `fleethub rollout status NAME`.
    public func status(deployment name: String, now: Date = Date()) throws -> RolloutStatus {
        let rollout = try latest(deployment: name)
        return try workspace.database.read { db in try Self.status(of: rollout, db: db, policy: policy, now: now) }
    }

    // MARK: - Advancing

    /// Evaluates every active rollout once and takes the step its rules decide. Returns
    /// the rollouts that took a step (their new state), for the caller to log.
    @discardableResult
    public func advance(now: Date = Date()) throws -> [Rollout] {
        try workspace.database.write { db in
            var changed: [Rollout] = []
            for var rollout in try Self.active(db) {
                let before = rollout
                let version = try DeploymentStore.version(rollout.version, of: rollout.deployment, db: db).definition
                let observations = try Self.observations(of: rollout, db: db, policy: policy, now: now)
                let outcome = RolloutEvaluation.evaluate(rollout, version: version, observations: observations, now: now)
                try Self.take(outcome.decision, on: &rollout, version: version, db: db, now: now)
                if !rollout.state.isOpen {
                    rollout.final = Rollout.FinalOutcome(
                        criteria: outcome.criteria, states: outcome.states,
                        errors: Dictionary(uniqueKeysWithValues: outcome.states.compactMap { id, state in
                            guard state == .failed || state == .rolledBack, let error = observations[id]?.report?.desired.error
                            else { return nil }
                            return (id, error)
                        }))
                }
                rollout.waiting = nil
                if rollout != before { try Self.save(rollout, db: db) }
                if rollout.events.count > before.events.count { changed.append(rollout) }
            }
            if !changed.isEmpty { _ = try DesiredStateStager.stage(db, workspace: workspace, now: now) }
            return changed
        }
    }

    /// Notes on every active rollout why it cannot advance now (nil clears it).
    public func setWaiting(_ reason: String?, now: Date = Date()) throws {
        try workspace.database.write { db in
            for var rollout in try Self.active(db) where rollout.waiting != reason {
                rollout.waiting = reason
                if let reason { rollout.record("waiting: \(reason)", at: now) }
                try Self.save(rollout, db: db)
            }
        }
    }

    private static func take(_ decision: RolloutEvaluation.Decision, on rollout: inout Rollout, version: ResolvedDeployment, db: SQLTransaction, now: Date) throws {
        switch decision {
        case .hold:
            if rollout.state == .soaking {
                rollout.state = .running
                rollout.healthySince = nil
                rollout.record("wave \(rollout.wave + 1): a device is no longer healthy; soak restarts when all are", at: now)
            }
        case .soak(let since):
            if rollout.state != .soaking {
                rollout.state = .soaking
                rollout.healthySince = since
                rollout.record("wave \(rollout.wave + 1): all \(rollout.updatedDevices.count) updated devices healthy; soaking \(rollout.policy.soakSeconds) s", at: now)
            }
        case .advance:
            rollout.wave += 1
            rollout.state = .running
            rollout.healthySince = nil
            rollout.waveStartedAt = now
            let devices = Array(rollout.currentWaveDevices)
            try assign(devices, to: rollout, promoted: false, db: db, now: now)
            rollout.record("wave \(rollout.wave + 1) of \(rollout.waveSizes.count): \(devices.count) more device(s), \(rollout.updatedDevices.count) of \(rollout.devices.count) in all", at: now)
        case .complete:
            try complete(&rollout, message: "completed: \(rollout.devices.count) device(s) on version \(rollout.version)", db: db, now: now)
        case .promote(let devices):
            try assign(devices, to: rollout, promoted: true, db: db, now: now)
            rollout.healthySince = nil
            rollout.state = .running
            rollout.record("wave \(rollout.wave + 1): shadow promoted to live on \(devices.count) device(s)", at: now)
        case .halt(let reason):
            rollout.state = .halted
            rollout.reason = reason
            var message = "halted: \(reason)"
            if rollout.policy.onAbort == .revert {
                try revert(rollout, db: db)
                message += "; reverted \(rollout.updatedDevices.count) device(s) to " + previousText(rollout)
            }
            rollout.record(message, at: now)
        }
    }

    // MARK: - Starting and ending

    /// Orders the targeted devices, puts the first wave on the new version and stores
    /// the rollout; called by `DeploymentStore` inside the deploy's transaction.
    static func start(
        _ version: ResolvedDeployment, policy: RolloutPolicy, previous: (version: Int, promoted: Bool)?,
        previousDefinition: ResolvedDeployment?, targeted: [String], tags: [String: [String: String]], db: SQLTransaction, now: Date
    ) throws -> Rollout {
        let canary = try policy.canaryFirst.map { try TargetExpression(parsing: $0) }
        let devices = order(targeted, first: { id in canary?.matches(tags[id] ?? [:]) ?? false })
        let reports = try FleetHealth.stored(db, deviceIds: devices).compactMapValues(\.report)
        let basis = previous.map { previous in previous.promoted ? previousDefinition?.promoted : previousDefinition } ?? nil
        var rollout = Rollout(
            id: 0, deployment: version.name, version: version.version, previousVersion: previous?.version,
            previousPromoted: previous?.promoted ?? false, policy: policy, devices: devices,
            waveSizes: policy.waveSizes(total: devices.count), wave: 0, state: .running, waveStartedAt: now,
            healthySince: nil, reason: nil, waiting: nil,
            baseline: RolloutEvaluation.baseline(of: basis, reports: reports, devices: devices),
            createdAt: now, updatedAt: now, events: [], final: nil)
        rollout.record(
            "started: version \(version.version) to \(devices.count) device(s) in \(rollout.waveSizes.count) wave(s) \(rollout.waveSizes.map(String.init).joined(separator: ", ")); wave 1: \(rollout.currentWaveDevices.count) device(s)",
            at: now)
        rollout.id = try db.insert(
            "INSERT INTO rollout (deployment, version, record, state, updatedAt) VALUES (?, ?, '', ?, ?)",
            [version.name, version.version, rollout.state.rawValue, now])
        try save(rollout, db: db)
        try assign(Array(rollout.currentWaveDevices), to: rollout, promoted: false, db: db, now: now)
        return rollout
    }

    /// Ends the open rollouts of a deployment that a newer version (or a delete) replaces.
    static func supersede(deployment name: String, by version: Int?, db: SQLTransaction, now: Date) throws {
        for var rollout in try open(db, deployment: name) {
            rollout.state = .superseded
            rollout.reason = version.map { "superseded by version \($0)" } ?? "the deployment was deleted"
            rollout.record(rollout.reason!, at: now)
            try save(rollout, db: db)
        }
    }

    /// Device order: those `first` selects, then the rest, each by a stable hash of the
    /// id, so the same fleet always gets the same waves.
    static func order(_ devices: [String], first: (String) -> Bool) -> [String] {
        let keyed = devices.map { ($0, ContentDigest(of: Data($0.utf8)).hex) }
        let sorted = keyed.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.map(\.0)
        return sorted.filter(first) + sorted.filter { !first($0) }
    }

    private static func assign(_ devices: [String], to rollout: Rollout, promoted: Bool, db: SQLTransaction, now: Date) throws {
        for id in devices {
            try db.execute("""
                    INSERT INTO deploymentAssignment (deployment, deviceId, version, promoted, revision, assignedAt)
                    VALUES (?1, ?2, ?3, ?4, 0, ?5)
                    ON CONFLICT(deployment, deviceId) DO UPDATE SET version = ?3, promoted = ?4, revision = 0, assignedAt = ?5
                    """, [rollout.deployment, id, rollout.version, promoted, now])
        }
    }

    /// Puts the rollout's devices back on the version they had before.
    private static func revert(_ rollout: Rollout, db: SQLTransaction) throws {
        try db.execute("DELETE FROM deploymentAssignment WHERE deployment = ?", [rollout.deployment])
    }

    private static func complete(_ rollout: inout Rollout, message: String, db: SQLTransaction, now: Date) throws {
        rollout.state = .completed
        rollout.healthySince = nil
        try db.execute(
            "UPDATE deployment SET stableVersion = ?, stablePromoted = ? WHERE name = ?",
            [rollout.version, rollout.policy.promoteWhen != nil, rollout.deployment])
        try db.execute("DELETE FROM deploymentAssignment WHERE deployment = ?", [rollout.deployment])
        rollout.record(message, at: now)
    }

    private static func previousText(_ rollout: Rollout) -> String {
        rollout.previousVersion.map { "version \($0)" } ?? "no version (the deployment's first)"
    }

    // MARK: - Operator commands

    public enum Command: String, Sendable, CaseIterable {
        case pause, resume, abort, promote
    }

    /// `fleethub rollout pause|resume|abort|promote NAME`; returns the rollout after it.
    public func apply(_ command: Command, deployment name: String, now: Date = Date()) throws -> (Rollout, RolloutChange) {
        try workspace.database.write { db in
            guard var rollout = try Self.latest(deployment: name, db: db) else {
                throw DeploymentError.noRollout(name)
            }
            switch (command, rollout.state) {
            case (.pause, .running), (.pause, .soaking):
                rollout.state = .paused
                rollout.healthySince = nil
                rollout.record("paused by the operator", at: now)
            case (.resume, .paused):
                rollout.state = .running
                rollout.record("resumed by the operator", at: now)
            case (.abort, let state) where state.isOpen || state == .halted:
                try Self.revert(rollout, db: db)
                rollout.state = .aborted
                rollout.reason = "aborted by the operator"
                rollout.record("aborted by the operator; \(rollout.updatedDevices.count) device(s) back on \(Self.previousText(rollout))", at: now)
            case (.promote, let state) where state.isOpen || state == .halted:
                try Self.complete(
                    &rollout,
                    message: "promoted by the operator: the remaining waves skipped, \(rollout.devices.count) device(s) on version \(rollout.version)",
                    db: db, now: now)
            default:
                throw DeploymentError.rolloutNotOpen(name, rollout.state, command: command.rawValue)
            }
            try Self.save(rollout, db: db)
            let changed = try DesiredStateStager.stage(db, workspace: workspace, now: now)
            return (rollout, RolloutChange(changedDevices: changed, warnings: []))
        }
    }

    // MARK: - Storage

    static func save(_ rollout: Rollout, db: SQLTransaction) throws {
        try db.execute(
            "UPDATE rollout SET record = ?, state = ?, updatedAt = ? WHERE id = ?",
            [String(decoding: try FleetJSON.encode(rollout), as: UTF8.self), rollout.state.rawValue, rollout.updatedAt, rollout.id])
    }

    static func load(id: Int64, db: SQLTransaction) throws -> Rollout? {
        try db.value(as: String.self, "SELECT record FROM rollout WHERE id = ?", [id]).map(decode)
    }

    static func latest(deployment name: String, db: SQLTransaction) throws -> Rollout? {
        try db.value(as: String.self, "SELECT record FROM rollout WHERE deployment = ? ORDER BY id DESC LIMIT 1", [name]).map(decode)
    }

    private static func active(_ db: SQLTransaction) throws -> [Rollout] {
        try db.values(as: String.self, "SELECT record FROM rollout WHERE state IN ('running', 'soaking') ORDER BY id").map(decode)
    }

    private static func open(_ db: SQLTransaction, deployment: String) throws -> [Rollout] {
        try db.values(as: String.self, "SELECT record FROM rollout WHERE deployment = ? AND state IN ('running', 'soaking', 'paused')", [deployment]).map(decode)
    }

    private static func decode(_ text: String) throws -> Rollout {
        try FleetJSON.decode(Rollout.self, from: Data(text.utf8))
    }

    // MARK: - Observations


    static func observations(of rollout: Rollout, db: SQLTransaction, policy: HealthPolicy, now: Date) throws -> [String: RolloutObservation] {
        let stored = try FleetHealth.stored(
            db, deviceIds: Array(rollout.state == .completed ? rollout.devices[...] : rollout.updatedDevices))
        var observations: [String: RolloutObservation] = [:]
        if rollout.state == .completed {
            // Every device now runs the version as the deployment's stable one.
            for id in rollout.devices {
                let health = stored[id]
                let (connectivity, offlineSince) = HealthDerivation.connectivity(of: health, now: now, policy: policy)
                observations[id] = RolloutObservation(
                    deviceId: id, assignedRevision: 1, assignedAt: rollout.updatedAt,
                    promoted: rollout.policy.promoteWhen != nil, report: health?.report, connectivity: connectivity,
                    offlineSince: offlineSince)
            }
            return observations
        }
        for row in try db.rows(
            "SELECT deviceId, revision, promoted, assignedAt FROM deploymentAssignment WHERE deployment = ? AND version = ?",
            [rollout.deployment, rollout.version])
        {
            let id: String = row["deviceId"]
            let health = stored[id]
            let (connectivity, offlineSince) = HealthDerivation.connectivity(of: health, now: now, policy: policy)
            observations[id] = RolloutObservation(
                deviceId: id, assignedRevision: row["revision"], assignedAt: row["assignedAt"], promoted: row["promoted"],
                report: health?.report, connectivity: connectivity, offlineSince: offlineSince)
        }
        return observations
    }

    static func status(of rollout: Rollout, db: SQLTransaction, policy: HealthPolicy, now: Date) throws -> RolloutStatus {
        let version = try DeploymentStore.version(rollout.version, of: rollout.deployment, db: db).definition
        let observations = try observations(of: rollout, db: db, policy: policy, now: now)
        var outcome = RolloutEvaluation.evaluate(rollout, version: version, observations: observations, now: now)
        if let final = rollout.final, rollout.state != .completed {
            outcome.criteria = final.criteria
            outcome.states = final.states
        }
        var counts = Dictionary(uniqueKeysWithValues: RolloutDeviceState.allCases.map { ($0.rawValue, 0) })
        var entries: [RolloutStatus.DeviceEntry] = []
        for (index, id) in rollout.devices.enumerated() {
            // A device a finished rollout no longer assigns is back on the stable version;
            // a halted or aborted one shows the state it was in when it ended.
            let state = observations[id] == nil && !rollout.state.isOpen && rollout.final == nil
                ? .waiting : outcome.states[id] ?? .waiting
            counts[state.rawValue, default: 0] += 1
            let wave = (rollout.waveSizes.firstIndex { index < $0 } ?? rollout.waveSizes.count - 1) + 1
            let content = observations[id]?.promoted == true ? version.promoted : version
            let report = observations[id]?.report
            entries.append(RolloutStatus.DeviceEntry(
                deviceId: id, wave: wave, state: state,
                modules: content.modules.map { $0.label + ($0.shadow.map { " shadow \($0.label)" } ?? "") },
                error: rollout.final?.errors[id] ?? (state == .failed || state == .rolledBack ? report?.desired.error : nil)))
        }
        return RolloutStatus(
            deployment: rollout.deployment, version: rollout.version, previousVersion: rollout.previousVersion,
            state: rollout.state, wave: rollout.wave + 1, waves: rollout.waveSizes.count, targeted: rollout.devices.count,
            updated: rollout.updatedDevices.count, devices: counts, criteria: outcome.criteria, reason: rollout.reason,
            waiting: rollout.waiting, shadow: outcome.shadow, perDevice: entries, events: rollout.events)
    }
}
