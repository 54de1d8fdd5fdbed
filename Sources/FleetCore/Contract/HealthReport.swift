import Foundation

/// What a device tells the hub about itself (docs/contract.md): published retained on every
/// change and every `reportInterval` seconds, so the hub always has the latest.
public struct HealthReport: Codable, Equatable, Sendable {
    public var deviceId: String
    public var at: Date
    public var runtimeVersion: String
    public var uptimeSeconds: Int
    public var desired: DesiredStateStatus
    public var modules: [ModuleHealth]
    public var system: SystemHealth
    public var telemetry: TelemetryHealth
    /// Seconds between two periodic reports of this device, so the hub can tell a
    /// silent device from one that is between reports; nil from older runtimes.
    public var reportIntervalSeconds: Int?

    public init(
        deviceId: String, at: Date, runtimeVersion: String, uptimeSeconds: Int, desired: DesiredStateStatus,
        modules: [ModuleHealth], system: SystemHealth, telemetry: TelemetryHealth, reportIntervalSeconds: Int? = nil
    ) {
        self.deviceId = deviceId
        self.at = at
        self.runtimeVersion = runtimeVersion
        self.uptimeSeconds = uptimeSeconds
        self.desired = desired
        self.modules = modules
        self.system = system
        self.telemetry = telemetry
        self.reportIntervalSeconds = reportIntervalSeconds
    }
}

/// How far the device got with the latest desired state.
public struct DesiredStateStatus: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable {
        case applied, applying, failed
        case rolledBack = "rolled-back"
    }

    /// The revision this status is about (0 before any desired state arrived).
    public var revision: Int
    public var status: Status
    /// Why it failed or was rolled back; nil otherwise.
    public var error: String?
    /// The modules that failed or were rolled back, so the hub can tell which of the
    /// deployments layered on the device is at fault; nil when none (or from older runtimes).
    public var modules: [String]?
    /// What the device is doing with this revision right now, so a long download or pip
    /// install shows more than `applying`; nil when it is not working on it.
    public var progress: ApplyProgress?
    /// When a failed revision is tried again, so a failure shows whether the device
    /// keeps trying and how hard; nil when no retry is planned.
    public var retry: ApplyRetry?

    public init(
        revision: Int, status: Status, error: String? = nil, modules: [String]? = nil, progress: ApplyProgress? = nil,
        retry: ApplyRetry? = nil
    ) {
        self.revision = revision
        self.status = status
        self.error = error
        self.modules = modules
        self.progress = progress
        self.retry = retry
    }
}

/// The step a device is on while it applies a desired state.
public struct ApplyProgress: Codable, Equatable, Sendable {
    /// In the device's words: `downloading iris (sha256:3f2a9c01b7d4)`, `installing
    /// requirements of iris-scorer:2`, `starting iris`.
    public var step: String
    /// How far along, 0 to 100: the bytes of a download, else the steps done of those
    /// planned; nil when not known.
    public var percent: Int?

    public init(step: String, percent: Int? = nil) {
        self.step = step
        self.percent = percent
    }

    /// `downloading iris (sha256:3f2a9c01b7d4) 42%`.
    public var text: String { step + (percent.map { " \($0)%" } ?? "") }
}

/// A failed revision's next attempt: the device retries with a capped exponential
/// back-off, and a new desired state replaces the retry at once.
public struct ApplyRetry: Codable, Equatable, Sendable {
    /// The step that failed, in the words of `ApplyProgress.step`.
    public var step: String
    /// How many attempts failed so far (1 after the first).
    public var attempt: Int
    /// When the next attempt starts.
    public var nextAttemptAt: Date

    public init(step: String, attempt: Int, nextAttemptAt: Date) {
        self.step = step
        self.attempt = attempt
        self.nextAttemptAt = nextAttemptAt
    }
}

/// One module as the supervisor sees it.
public struct ModuleHealth: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable {
        case running, backoff, failed, stopped
    }

    public var name: String
    public var bundleDigest: ContentDigest
    public var status: Status
    public var restarts: Int
    public var lastExitCode: Int32?
    public var lastError: String?
    public var inference: InferenceStats?
    /// How the module's shadow version compares with it; nil without a shadow.
    public var shadow: ShadowHealth?
    /// The latest closed window of input summaries; nil without `telemetry.drift`.
    public var drift: DriftWindow?

    public init(
        name: String, bundleDigest: ContentDigest, status: Status, restarts: Int = 0,
        lastExitCode: Int32? = nil, lastError: String? = nil, inference: InferenceStats? = nil,
        shadow: ShadowHealth? = nil, drift: DriftWindow? = nil
    ) {
        self.name = name
        self.bundleDigest = bundleDigest
        self.status = status
        self.restarts = restarts
        self.lastExitCode = lastExitCode
        self.lastError = lastError
        self.inference = inference
        self.shadow = shadow
        self.drift = drift
    }
}

/// A shadow version's record against the live one since the shadow started: what
/// a rollout's `promoteWhen` gate reads.
public struct ShadowHealth: Codable, Equatable, Sendable {
    public var bundleDigest: ContentDigest
    /// `running` while the shadow's workers serve; `backoff` or `failed` when it could not start.
    public var status: ModuleHealth.Status
    public var lastError: String?
    /// Mirrored requests that completed on the shadow (answered or failed).
    public var samples: Int
    /// Samples whose answer agreed with the live one: every label, string and boolean
    /// equal, at the same place. Numbers are compared in `differences` instead.
    public var agreed: Int
    /// Samples where the shadow raised, timed out or answered an error status.
    public var errors: Int
    /// Sampled requests not mirrored because the shadow was busy or not ready.
    public var skipped: Int
    /// Per output path (e.g. `predictions[0]`, `$` for a bare number): absolute
    /// differences between shadow and live numbers.
    public var differences: [String: NumericDifference]
    /// The shadow's own latency.
    public var p50Ms: Double
    public var p99Ms: Double

    public init(
        bundleDigest: ContentDigest, status: ModuleHealth.Status, lastError: String? = nil, samples: Int = 0,
        agreed: Int = 0, errors: Int = 0, skipped: Int = 0, differences: [String: NumericDifference] = [:],
        p50Ms: Double = 0, p99Ms: Double = 0
    ) {
        self.bundleDigest = bundleDigest
        self.status = status
        self.lastError = lastError
        self.samples = samples
        self.agreed = agreed
        self.errors = errors
        self.skipped = skipped
        self.differences = differences
        self.p50Ms = p50Ms
        self.p99Ms = p99Ms
    }

    /// The share of samples that agreed; nil before the first sample.
    public var agreement: Double? { samples > 0 ? Double(agreed) / Double(samples) : nil }
}

/// Absolute differences between two versions' numbers at one output path.
public struct NumericDifference: Codable, Equatable, Sendable {
    public var count: Int
    public var mean: Double
    public var max: Double

    public init(count: Int, mean: Double, max: Double) {
        self.count = count
        self.mean = mean
        self.max = max
    }
}

/// Local inference counters and latency of a scoring module.
public struct InferenceStats: Codable, Equatable, Sendable {
    public var count: Int
    public var errors: Int
    public var p50Ms: Double
    public var p99Ms: Double

    public init(count: Int, errors: Int, p50Ms: Double, p99Ms: Double) {
        self.count = count
        self.errors = errors
        self.p50Ms = p50Ms
        self.p99Ms = p99Ms
    }
}

/// The device's resources.
public struct SystemHealth: Codable, Equatable, Sendable {
    public var cpuPercent: Double
    public var memUsedBytes: Int64
    public var memTotalBytes: Int64
    public var diskFreeBytes: Int64

    public init(cpuPercent: Double, memUsedBytes: Int64, memTotalBytes: Int64, diskFreeBytes: Int64) {
        self.cpuPercent = cpuPercent
        self.memUsedBytes = memUsedBytes
        self.memTotalBytes = memTotalBytes
        self.diskFreeBytes = diskFreeBytes
    }
}

/// The telemetry buffer's state.
public struct TelemetryHealth: Codable, Equatable, Sendable {
    public var buffered: Int
    public var oldestAgeSeconds: Int
    public var uploaded: Int
    public var dropped: Int
    /// Optional: records the buffer refused, by reason (`disk-full`); left out when none was.
    public var refused: [String: Int]?

    public init(buffered: Int, oldestAgeSeconds: Int, uploaded: Int, dropped: Int, refused: [String: Int]? = nil) {
        self.buffered = buffered
        self.oldestAgeSeconds = oldestAgeSeconds
        self.uploaded = uploaded
        self.dropped = dropped
        self.refused = refused
    }
}

/// The body of the connection topic: online on connect, offline as the last will.
public struct ConnectionState: Codable, Equatable, Sendable {
    public var online: Bool
    public var at: Date?
    public var runtimeVersion: String?

    public init(online: Bool, at: Date? = nil, runtimeVersion: String? = nil) {
        self.online = online
        self.at = at
        self.runtimeVersion = runtimeVersion
    }
}
