import FleetCore
import Foundation

/// The runtime's timings and limits. The defaults suit a device in the field
/// (docs/runtime.md explains each); tests shorten them to keep runs fast.
public struct RuntimeSettings: Sendable {
    /// Restart delays of a module that keeps exiting.
    public var backoff: BackoffSchedule
    /// How long a module has to stay up after an update before the new version counts
    /// as good; if it exits within this window the runtime rolls back.
    public var rollbackWindow: Duration
    /// How long a module gets to exit after SIGTERM before its process group gets SIGKILL.
    public var stopGracePeriod: Duration
    /// Size of one module log file before it is rotated.
    public var logFileBytes: Int64
    /// How many rotated log files are kept per module, besides the current one.
    public var logFilesKept: Int
    /// Limits for unpacking bundles (zip bombs).
    public var bundleLimits: BundleLimits
    /// Delays before a desired state that failed (hub unreachable, a digest mismatch,
    /// pip failing) is tried again; a new desired state starts over at once.
    public var applyRetry: BackoffSchedule
    /// Longest `python3 -m venv` and `pip install` may take (the device config's `environments:`).
    public var venvTimeout: Duration
    public var pipTimeout: Duration
    /// Disk the bundles and Python environments of modules no longer deployed may keep
    /// (the device config's `cacheBudgetMB`), so they come back without a download or pip.
    public var cacheBudgetBytes: Int64

    public init(
        backoff: BackoffSchedule = BackoffSchedule(), rollbackWindow: Duration = .seconds(30),
        stopGracePeriod: Duration = .seconds(10), logFileBytes: Int64 = 1 << 20, logFilesKept: Int = 3,
        bundleLimits: BundleLimits = BundleLimits(), applyRetry: BackoffSchedule = .desiredStateRetry,
        cacheBudgetBytes: Int64 = Int64(DeviceConfig.defaultCacheBudgetMB) << 20,
        venvTimeout: Duration = .seconds(EnvironmentSettings.defaultVenvTimeoutSeconds),
        pipTimeout: Duration = .seconds(EnvironmentSettings.defaultPipTimeoutSeconds)
    ) {
        self.backoff = backoff
        self.rollbackWindow = rollbackWindow
        self.stopGracePeriod = stopGracePeriod
        self.logFileBytes = logFileBytes
        self.logFilesKept = logFilesKept
        self.bundleLimits = bundleLimits
        self.applyRetry = applyRetry
        self.cacheBudgetBytes = cacheBudgetBytes
        self.venvTimeout = venvTimeout
        self.pipTimeout = pipTimeout
    }
}
