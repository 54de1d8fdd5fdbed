import FleetCore
import Foundation
import Logging

/// Inference counters and latency per module name, from the local inference server.
public typealias InferenceStatsSource = @Sendable () async -> [String: InferenceStats]
/// The telemetry buffer's depth and upload counts.
public typealias TelemetryHealthSource = @Sendable () async -> TelemetryHealth
/// Each running shadow's record against its live module, by module name.
public typealias ShadowHealthSource = @Sendable () async -> [String: ShadowHealth]
/// The latest closed window of input summaries of a module's version (name, bundle).
public typealias DriftHealthSource = @Sendable (String, ContentDigest) -> DriftWindow?

/// Publishes the device's health report (docs/contract.md) retained with QoS 1 on
/// `Topics.reported(deviceId)`, so the hub always holds the latest one: after every
/// change in the state database (a module started, crashed or backed off; a revision
/// was accepted, applied, failed or rolled back; a desired message was refused), on
/// every (re)connect, and every `interval`. At most one report goes out per
/// `minimumGap`: changes in between coalesce into the next report, so a crash-looping
/// module cannot flood the broker. While the broker is unreachable nothing is sent;
/// the latest state goes out on reconnect.
public actor HealthReporter {
    public nonisolated let deviceId: String
    private let store: StateStore
    private let client: MQTTClient
    private let interval: Duration
    private let minimumGap: Duration
    private let logger: Logger
    private let startedAt = ContinuousClock.now
    private var system: SystemSampler
    private var inferenceSource: InferenceStatsSource?
    private var telemetrySource: TelemetryHealthSource?
    private var shadowSource: ShadowHealthSource?
    private var driftSource: DriftHealthSource?
    private nonisolated let changes: AsyncStream<Void>
    private nonisolated let connectionEvents: AsyncStream<MQTTConnectionEvent>
    private nonisolated let wakeups: AsyncStream<Void>
    private nonisolated let wake: AsyncStream<Void>.Continuation

    /// Longest error text a report carries per module or revision; the full text is in the logs.
    static let errorLimit = 300

    /// Subscribes to the store's changes and the client's connection events at once,
    /// so nothing that happens before `run()` starts is missed.
    /// - Parameter diskPath: a path on the file system whose free space is reported (the data dir).
    public init(
        deviceId: String, store: StateStore, client: MQTTClient, diskPath: String, interval: Duration,
        minimumGap: Duration = .seconds(1), logger: Logger
    ) {
        self.deviceId = deviceId
        self.store = store
        self.client = client
        self.interval = interval
        self.minimumGap = minimumGap
        self.logger = logger
        system = SystemSampler(diskPath: diskPath)
        changes = store.changes()
        connectionEvents = client.connectionEvents()
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Where per-module inference numbers come from; modules without numbers report none.
    public func setInferenceSource(_ source: @escaping InferenceStatsSource) {
        inferenceSource = source
    }

    /// Where the telemetry numbers come from; without one they are reported as zero.
    public func setTelemetrySource(_ source: @escaping TelemetryHealthSource) {
        telemetrySource = source
    }

    /// Where the live shadow numbers come from; without one a module's shadow is
    /// reported as the supervisor last recorded it.
    public func setShadowSource(_ source: @escaping ShadowHealthSource) {
        shadowSource = source
    }

    /// Where the modules' latest input summaries come from; without one none are reported.
    public func setDriftSource(_ source: @escaping DriftHealthSource) {
        driftSource = source
    }

    /// Publishes a report soon (within `minimumGap`), as after a change in the state
    /// database: a drift window closed.
    public nonisolated func publishSoon() {
        wake.yield()
    }

    /// Reports until cancelled.
    public func run() async {
        wake.yield()
        await withDiscardingTaskGroup { group in
            group.addTask { [changes, wake] in
                for await _ in changes { wake.yield() }
            }
            group.addTask { [connectionEvents, wake] in
                for await event in connectionEvents where event == .connected { wake.yield() }
            }
            group.addTask { [interval, wake] in
                while (try? await Task.sleep(for: interval)) != nil { wake.yield() }
            }
            await publishOnWake()
            group.cancelAll()
        }
    }

    /// The device's health right now.
    public func report() async throws -> HealthReport {
        let status = try store.status()
        let inference = await inferenceSource?() ?? [:]
        let shadows = await shadowSource?() ?? [:]
        let drift = driftSource
        let modules = status.moduleHealth.map { module in
            var module = module
            module.lastError = module.lastError.map(Self.shortened)
            module.inference = inference[module.name]
            module.drift = drift?(module.name, module.bundleDigest)
            if var shadow = shadows[module.name] ?? module.shadow {
                shadow.lastError = shadow.lastError.map(Self.shortened)
                module.shadow = shadow
            }
            return module
        }
        var desired = status.desired
        desired.error = desired.error.map(Self.shortened)
        return HealthReport(
            deviceId: deviceId, at: Date(), runtimeVersion: runtimeVersion,
            uptimeSeconds: Int((ContinuousClock.now - startedAt).components.seconds), desired: desired,
            modules: modules, system: system.sample(),
            telemetry: await telemetrySource?() ?? TelemetryHealth(buffered: 0, oldestAgeSeconds: 0, uploaded: 0, dropped: 0),
            reportIntervalSeconds: Int(interval.components.seconds))
    }

    private func publishOnWake() async {
        var lastPublished: ContinuousClock.Instant?
        for await _ in wakeups {
            if let lastPublished {
                // Wake-ups arriving meanwhile collapse into the one buffered element.
                try? await Task.sleep(until: lastPublished + minimumGap)
            }
            guard !Task.isCancelled else { return }
            // Disconnected: the reconnect wakes the reporter again.
            guard client.isConnected else { continue }
            lastPublished = .now
            await publish()
        }
    }

    private func publish() async {
        do {
            let payload = try FleetJSON.encode(try await report())
            try await client.publish(Topics.reported(deviceId), payload: payload, qos: .atLeastOnce, retain: true)
            logger.debug("published health report", metadata: ["bytes": "\(payload.count)"])
        } catch {
            logger.warning("cannot publish the health report; retrying on the next change", metadata: ["error": "\(error)"])
        }
    }

    private static func shortened(_ text: String) -> String {
        text.count <= errorLimit ? text : String(text.prefix(errorLimit - 1)) + "…"
    }
}
