import FleetCore
import Foundation

/// What the runtime is doing, as other code (the health reporter, `edge-runtime
/// status`) reads it: the desired revision and how applying it went, and each module.
public struct RuntimeStatus: Codable, Equatable, Sendable {
    /// The highest revision this device accepted (0 before any).
    public var acceptedRevision: Int
    /// The latest revision whose application completed without failure or rollback.
    public var appliedRevision: Int
    /// How applying the accepted revision went.
    public var desired: DesiredStateStatus
    /// Why the latest refused desired-state message was refused, if any was.
    public var lastRefusal: String?
    public var modules: [ModuleStatus]
    /// The pid of the `edge-runtime run` holding the data dir's lock, nil when none
    /// runs (the modules are then as it last recorded them). Not stored: `edge-runtime
    /// status` asks the lock.
    public var daemonPid: Int32?
    /// The telemetry buffer's figures as last committed to `telemetry.sqlite`. Not stored
    /// here: `edge-runtime status` reads the buffer's file.
    public var telemetry: TelemetryHealth?

    public init(
        acceptedRevision: Int, appliedRevision: Int, desired: DesiredStateStatus, lastRefusal: String?,
        modules: [ModuleStatus], daemonPid: Int32? = nil
    ) {
        self.acceptedRevision = acceptedRevision
        self.appliedRevision = appliedRevision
        self.desired = desired
        self.lastRefusal = lastRefusal
        self.modules = modules
        self.daemonPid = daemonPid
    }

    /// The modules in the shape of a health report (docs/contract.md).
    public var moduleHealth: [ModuleHealth] {
        modules.map {
            ModuleHealth(
                name: $0.name, bundleDigest: $0.bundleDigest, status: $0.status, restarts: $0.restarts,
                lastExitCode: $0.lastExitCode, lastError: $0.lastError, shadow: $0.shadow)
        }
    }
}

/// One supervised module: its process, and how often it had to be restarted.
public struct ModuleStatus: Codable, Equatable, Sendable {
    public var name: String
    public var bundleDigest: ContentDigest
    public var status: ModuleHealth.Status
    public var restarts: Int
    /// The exit code of the last exit; 128 + the signal number when a signal ended it.
    public var lastExitCode: Int32?
    public var lastError: String?
    public var pid: Int32?
    /// The process group the module runs in (the pid of its first process).
    public var processGroup: Int32?
    /// The kernel's start time of `pid` (clock ticks since boot), which tells a
    /// leftover module process apart from an unrelated one that reused the pid.
    public var processStartTicks: UInt64?
    /// When the current process started.
    public var startedAt: Date?
    /// The module's shadow version: its state when it last changed (started, failed,
    /// stopped) with the numbers of that moment; the running daemon reports live numbers.
    /// Nil without a shadow.
    public var shadow: ShadowHealth?
    /// The scoring worker processes of a scoring module (its live version, a version it is
    /// switching to or from, and its shadow), so a runtime started after a crash ends
    /// those its predecessor left, busy or hung ones included. Nil for a process module.
    public var scoringWorkers: [WorkerProcess]?

    public init(
        name: String, bundleDigest: ContentDigest, status: ModuleHealth.Status, restarts: Int = 0,
        lastExitCode: Int32? = nil, lastError: String? = nil, pid: Int32? = nil, processGroup: Int32? = nil,
        processStartTicks: UInt64? = nil, startedAt: Date? = nil, shadow: ShadowHealth? = nil,
        scoringWorkers: [WorkerProcess]? = nil
    ) {
        self.name = name
        self.bundleDigest = bundleDigest
        self.status = status
        self.restarts = restarts
        self.lastExitCode = lastExitCode
        self.lastError = lastError
        self.pid = pid
        self.processGroup = processGroup
        self.processStartTicks = processStartTicks
        self.startedAt = startedAt
        self.shadow = shadow
        self.scoringWorkers = scoringWorkers
    }
}

/// A scoring worker as the state store records it: each worker leads its own process
/// group, so its pid is also its group, and its kernel start time tells it apart from an
/// unrelated process that reused the pid.
public struct WorkerProcess: Codable, Equatable, Sendable {
    public var pid: Int32
    public var startTicks: UInt64

    public init(pid: Int32, startTicks: UInt64) {
        self.pid = pid
        self.startTicks = startTicks
    }
}
