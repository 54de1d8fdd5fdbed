import FleetCore
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `edge-runtime run`: the device daemon. It first locks the data dir (a second
/// daemon on it is refused and changes nothing), then ends processes a crashed
/// predecessor left, starts the installed modules at once from the state database, reconciles
/// towards the accepted desired state, and follows the hub over MQTT. Cancelling
/// `run()` (SIGTERM) stops every module gracefully and leaves the broker cleanly.
/// Alongside, it serves the local inference API (`localAPI` in the config), buffers
/// telemetry in `telemetry.sqlite` and uploads it when `storage` is configured.
public struct EdgeRuntimeDaemon: Sendable {
    public let config: DeviceConfig
    public let settings: RuntimeSettings
    public let logger: Logger

    /// The config's `cacheBudgetMB` and `environments` timeouts, when set, override `settings`.
    public init(config: DeviceConfig, settings: RuntimeSettings = RuntimeSettings(), logger: Logger) {
        self.config = config
        var settings = settings
        if let megabytes = config.cacheBudgetMB { settings.cacheBudgetBytes = Int64(megabytes) << 20 }
        if let seconds = config.environments?.venvTimeoutSeconds { settings.venvTimeout = .seconds(seconds) }
        if let seconds = config.environments?.pipTimeoutSeconds { settings.pipTimeout = .seconds(seconds) }
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let dataDirectory = DataDirectory(config: config)
        let lock = try DataDirectoryLock.acquire(dataDirectory)
        do {
            try dataDirectory.create()
        } catch {
            throw DaemonError.dataDirectory(path: dataDirectory.root.path, reason: "\(error.localizedDescription)")
        }
        let store = try StateStore(url: dataDirectory.database)
        await LeftoverProcesses.end(
            try store.moduleStatuses().flatMap(\.trackedProcesses) + store.setupProcesses(), grace: settings.stopGracePeriod,
            logger: logger)
        try store.removeSetupProcesses()

        let telemetry: DeviceTelemetry
        do {
            telemetry = try DeviceTelemetry(config: config, dataDirectory: dataDirectory, logger: logger)
        } catch {
            throw DaemonError.telemetry(reason: "\(error)")
        }
        let localModules = LocalModules()
        let api = try await RunningLocalAPI.start(
            settings: config.localAPI, modules: localModules, telemetry: telemetry.buffer, logger: logger)
        defer { api.task.cancel() }
        let drift = InputDrift()
        let scoring = ScoringServices(
            modules: localModules, recorder: telemetry.recorder, drift: drift,
            requestTimeout: .milliseconds(Int64((config.localAPI?.requestTimeoutSeconds ?? 30) * 1000)),
            localAPIURL: api.url)
        let supervisor = Supervisor(
            store: store, dataDirectory: dataDirectory, settings: settings, logger: logger, scoring: scoring)
        let reconciler = Reconciler(
            store: store, supervisor: supervisor,
            downloader: BundleDownloader(
                dataDirectory: dataDirectory, baseURL: URL(string: config.hub.bundleBaseURL), token: config.hub.token,
                trust: FleetHTTPClient.Trust(hubCAFile: config.hub.caFile)),
            dataDirectory: dataDirectory, settings: settings, logger: logger)
        // Checked before any module starts, so a config error stops nothing half-way.
        let logs = ModuleLogResponder(dataDirectory: dataDirectory) { ((try? store.appliedModules()) ?? []).map(\.name) }
        let session = try DeviceSession(config: config, store: store, logger: logger, logs: logs) { desired in
            await reconciler.submit(desired)
        }
        let telemetryTask = Task { await telemetry.run(supervisor: supervisor, modules: localModules) }
        defer { telemetryTask.cancel() }
        let reporter = HealthReporter(
            deviceId: config.deviceId, store: store, client: session.client, diskPath: dataDirectory.root.path,
            interval: .seconds(max(1, config.reportIntervalSeconds ?? 30)), logger: logger)
        await reporter.setInferenceSource {
            var stats: [String: InferenceStats] = [:]
            for (name, host) in localModules.all { stats[name] = host?.inferenceStats }
            return stats
        }
        await reporter.setShadowSource { localModules.shadowHealth }
        await reporter.setDriftSource { drift.latest(module: $0, bundle: $1) }
        let driftTask = Task { await drift.run(buffer: telemetry.buffer, logger: logger) { reporter.publishSoon() } }
        defer { driftTask.cancel() }
        await reporter.setTelemetrySource {
            guard let stats = try? telemetry.buffer.stats() else {
                return TelemetryHealth(buffered: 0, oldestAgeSeconds: 0, uploaded: 0, dropped: 0)
            }
            return TelemetryHealth(
                buffered: stats.buffered, oldestAgeSeconds: Int(stats.oldestAge() ?? 0), uploaded: Int(stats.uploaded),
                dropped: Int(stats.droppedFull + stats.droppedExpired), refused: stats.refused.isEmpty ? nil : stats.refused)
        }
        let reporting = Task { await reporter.run() }
        defer { reporting.cancel() }
        await reconciler.startInstalledModules()
        if let desired = try store.acceptedDesiredState() {
            await reconciler.submit(desired)
        }
        logger.info("edge-runtime running", metadata: ["device": "\(config.deviceId)", "dataDir": "\(dataDirectory.root.path)"])
        await session.run()
        // The session ends only when cancelled: shut down.
        await reconciler.stop()
        logger.info("stopping modules")
        let order = ((try? store.appliedModules()) ?? [])
            .sorted { ($0.spec.startupOrder, $0.name) < ($1.spec.startupOrder, $1.name) }.map(\.name)
        await supervisor.stopAll(order: order)
        telemetryTask.cancel()
        await telemetryTask.value
        await telemetry.flush()
        api.task.cancel()
        await api.task.value
        lock.release()
        logger.info("edge-runtime stopped")
    }
}

/// Why the daemon cannot start.
public enum DaemonError: Error, CustomStringConvertible {
    case dataDirectory(path: String, reason: String)
    case telemetry(reason: String)
    case localAPI(address: String, reason: String)

    public var description: String {
        switch self {
        case .dataDirectory(let path, let reason):
            "cannot create the data dir \(path): \(reason); set dataDir in the device config to a writable folder"
        case .telemetry(let reason):
            "cannot set up telemetry: \(reason); check the storage and telemetry sections of the device config"
        case .localAPI(let address, let reason):
            "cannot serve the local API on \(address): \(reason); set localAPI.port in the device config to a free port"
        }
    }
}
