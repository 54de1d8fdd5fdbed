import FleetCore
import Foundation

/// One staged rollout of a deployment version: the persistent state machine that
/// `fleethub serve` advances as health reports arrive (docs/rollouts.md). It is
/// stored whole after every step, inside the transaction that stages the step's
/// desired states, so a hub killed at any point resumes where it was and never
/// publishes a step twice.
public struct Rollout: Codable, Equatable, Sendable {
    public enum State: String, Codable, Sendable, CaseIterable {
        /// The current wave's devices are being updated, or are not all healthy yet.
        case running
        /// Every updated device is healthy; the wave's soak time is running.
        case soaking
        /// Stopped by `fleethub rollout pause`; `resume` continues.
        case paused
        /// Stopped by its abort criteria; see `reason`. `deployment rollback` is the way out.
        case halted
        case completed
        /// A newer deploy of the same deployment replaced it.
        case superseded
        /// Stopped by `fleethub rollout abort`; the updated devices went back.
        case aborted

        /// Whether `fleethub serve` still advances it.
        public var isActive: Bool { self == .running || self == .soaking }
        /// Whether it can still become active (by `resume`).
        public var isOpen: Bool { isActive || self == .paused }
    }

    public var id: Int64
    public var deployment: String
    public var version: Int
    /// The version devices go back to on revert; nil for a deployment's first version.
    public var previousVersion: Int?
    public var previousPromoted: Bool
    public var policy: RolloutPolicy
    /// Every targeted device in rollout order: `canaryFirst` devices, then by a stable hash of the id.
    public var devices: [String]
    /// Cumulative device counts per wave (`RolloutPolicy.waveSizes`).
    public var waveSizes: [Int]
    /// The current wave, from 0.
    public var wave: Int
    public var state: State
    public var waveStartedAt: Date
    /// Since when every updated device has been healthy; nil while one is not.
    public var healthySince: Date?
    /// Why it halted, was aborted or superseded.
    public var reason: String?
    /// Why it is not advancing right now although active (e.g. the broker is down).
    public var waiting: String?
    /// The previous version's inference figures on the targeted devices when the rollout began.
    public var baseline: InferenceFigures?
    public var createdAt: Date
    public var updatedAt: Date
    /// What happened, oldest first: waves published, promotions, the halt.
    public var events: [Event]
    /// The criteria and device states when it halted, completed or was aborted, which
    /// `rollout status` shows from then on (a revert changes what the devices run).
    public var final: FinalOutcome?

    public struct FinalOutcome: Codable, Equatable, Sendable {
        public var criteria: [RolloutCriterion]
        public var states: [String: RolloutDeviceState]
        /// What the failed or rolled-back devices reported as the reason.
        public var errors: [String: String]
    }

    public struct Event: Codable, Equatable, Sendable {
        public var at: Date
        public var message: String
    }

    /// The devices of waves up to and including the current one.
    public var updatedDevices: ArraySlice<String> { devices.prefix(waveSizes[min(wave, waveSizes.count - 1)]) }

    /// The devices the current wave added.
    public var currentWaveDevices: ArraySlice<String> {
        let start = wave == 0 ? 0 : waveSizes[wave - 1]
        return devices[start..<waveSizes[wave]]
    }

    public var isLastWave: Bool { wave >= waveSizes.count - 1 }

    mutating func record(_ message: String, at now: Date) {
        events.append(Event(at: now, message: message))
        updatedAt = now
    }
}

/// Inference counters summed over a version's modules on a set of devices.
public struct InferenceFigures: Codable, Equatable, Sendable {
    public var requests: Int
    public var errors: Int
    /// The median over devices of each device's p99, in milliseconds; nil without requests.
    public var p99Ms: Double?

    public init(requests: Int, errors: Int, p99Ms: Double?) {
        self.requests = requests
        self.errors = errors
        self.p99Ms = p99Ms
    }

    public var errorRate: Double? { requests > 0 ? Double(errors) / Double(requests) : nil }
}

/// Where one device stands in a rollout.
public enum RolloutDeviceState: String, Codable, Sendable, CaseIterable {
    /// Not in a wave yet.
    case waiting
    /// Given the new version; has not reported it applied yet.
    case pending
    /// Every module of this deployment runs the new version.
    case healthy
    case failed
    case rolledBack = "rolled-back"
    /// Applied, but a module of this deployment is not running.
    case notRunning = "not-running"
    case offline
    /// Not healthy `abort.timeoutSeconds` after it was given the new version: counts as failed.
    case timedOut = "timed-out"

    /// Counted against the version by `abort.failedPercent`.
    public var isFailure: Bool { self == .failed || self == .rolledBack || self == .timedOut }
}

/// One abort or promotion criterion with its current value, as `rollout status` shows it.
public struct RolloutCriterion: Codable, Equatable, Sendable {
    public var name: String
    /// The measured value; nil while there is not enough data.
    public var value: Double?
    public var threshold: String
    /// Whether the rollout may go on as far as this criterion says.
    public var ok: Bool
    public var detail: String
}

/// `fleethub rollout status`: a rollout with its devices and criteria.
public struct RolloutStatus: Codable, Equatable, Sendable {
    public var deployment: String
    public var version: Int
    public var previousVersion: Int?
    public var state: Rollout.State
    /// The current wave, from 1.
    public var wave: Int
    public var waves: Int
    public var targeted: Int
    public var updated: Int
    /// Devices per `RolloutDeviceState`; every state present.
    public var devices: [String: Int]
    public var criteria: [RolloutCriterion]
    public var reason: String?
    public var waiting: String?
    public var shadow: ShadowSummary?
    public var perDevice: [DeviceEntry]
    public var events: [Rollout.Event]

    public struct DeviceEntry: Codable, Equatable, Sendable {
        public var deviceId: String
        public var wave: Int
        public var state: RolloutDeviceState
        /// The module versions it should run, e.g. `iris-scorer:2 (model iris:3)`.
        public var modules: [String]
        public var error: String?
    }

    /// The shadows' record over the updated devices.
    public struct ShadowSummary: Codable, Equatable, Sendable {
        public var samples: Int
        public var agreed: Int
        public var errors: Int
        public var agreement: Double?
        public var p50Ms: Double?
        public var p99Ms: Double?
        public var promotedDevices: Int
    }
}
