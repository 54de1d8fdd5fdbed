import FleetCore
import Foundation
import Logging
import Synchronization

/// One simulated device: its own MQTT session with the offline last will, the
/// retained online state, its desired-state subscription, and health reports as
/// the runtime sends them (docs/contract.md, §6).
final class SimulatedDevice: Sendable {
    let id: String
    private let client: MQTTClient
    private let startedAt = Date()
    private let received = Mutex<[Int: Date]>([:])
    private let reported = Mutex<[Int: Date]>([:])
    private let crashLooping = Mutex(false)
    private let hubKey: HubPublicKey?
    private let reportInterval: Int
    /// The latest desired state applied, with the digest each module ran before it.
    private let state = Mutex<AppliedState?>(nil)

    struct AppliedState {
        struct Module {
            var spec: ModuleSpec
            var previousDigest: ContentDigest?
        }

        var revision: Int
        var at: Date
        var modules: [Module]
    }

    init(id: String, broker: BrokerAddress, hubKey: HubPublicKey?, reportInterval: Int) throws {
        self.id = id
        self.hubKey = hubKey
        self.reportInterval = reportInterval
        var logger = Logger(label: "fleet-simulator.\(id)")
        logger.logLevel = .error
        client = try MQTTClient(MQTTConfiguration(
            host: broker.host, port: broker.port, clientId: id, keepAliveSeconds: 60,
            will: LastWill(topic: Topics.connection(id), payload: try FleetJSON.encode(ConnectionState(online: false))),
            connectTimeout: .seconds(60), acknowledgementTimeout: .seconds(60), logger: logger))
    }

    /// Connects, announces itself online, subscribes to its desired state and reports.
    /// As the runtime does, it announces itself and reports again on every reconnect.
    func start() async throws {
        let events = client.connectionEvents()
        try await client.connect()
        try await announceAndReport()
        try await client.subscribe(Topics.desired(id)) { [self] message in receive(message) }
        Task { [self] in
            for await event in events where event == .connected {
                try? await announceAndReport()
            }
        }
    }

    private func announceAndReport() async throws {
        try await client.publish(
            Topics.connection(id), payload: FleetJSON.encode(ConnectionState(online: true, at: Date(), runtimeVersion: "sim")),
            qos: .atLeastOnce, retain: true)
        try await report(revision: latestRevision)
    }

    /// Publishes one health report (QoS 1, retained): the latest desired state as its
    /// modules' `FLEET_SIMULATOR_*` variables say it went (see `Behaviour`), or one
    /// module `scorer` while no desired state with modules arrived. After
    /// `startCrashLoop`, the first module crash-loops.
    func report(revision: Int) async throws {
        let looping = crashLooping.withLock { $0 }
        let uptime = Int(Date().timeIntervalSince(startedAt))
        let applied = state.withLock { $0 }
        var modules: [ModuleHealth]
        var desired = DesiredStateStatus(revision: revision, status: .applied)
        if let applied, applied.revision == revision, !applied.modules.isEmpty {
            modules = applied.modules.map { module in
                let behaviour = Behaviour(module.spec.env)
                let since = Int(Date().timeIntervalSince(applied.at))
                let count = since * 10
                let digest = behaviour.outcome == .rolledBack ? (module.previousDigest ?? module.spec.bundle.digest) : module.spec.bundle.digest
                return ModuleHealth(
                    name: module.spec.name, bundleDigest: digest, status: behaviour.outcome == .failed ? .failed : .running,
                    inference: InferenceStats(
                        count: count, errors: Int(Double(count) * behaviour.errorRate), p50Ms: 0.8,
                        p99Ms: behaviour.p99Ms ?? Double.random(in: 1.5...4)),
                    shadow: module.spec.shadow.map { shadow in
                        let samples = Int(Double(count) * shadow.sampleRate)
                        return ShadowHealth(
                            bundleDigest: shadow.bundle.digest, status: .running, samples: samples,
                            agreed: Int(Double(samples) * behaviour.shadowAgreement), p50Ms: 1, p99Ms: 2)
                    })
            }
            if looping {
                modules[0].status = .backoff
                modules[0].restarts = 99
                modules[0].lastExitCode = 1
                modules[0].lastError = "simulated crash"
            }
            let failing = applied.modules.filter { Behaviour($0.spec.env).outcome != .applied }
            if let worst = failing.first {
                let outcome = Behaviour(worst.spec.env).outcome
                desired = DesiredStateStatus(
                    revision: revision, status: outcome == .failed ? .failed : .rolledBack,
                    error: "\(worst.spec.name): simulated \(outcome.rawValue)", modules: failing.map(\.spec.name))
            }
        } else {
            modules = [ModuleHealth(
                name: "scorer", bundleDigest: ContentDigest(of: Data(id.utf8)),
                status: looping ? .backoff : .running, restarts: looping ? 99 : 0, lastExitCode: looping ? 1 : nil,
                lastError: looping ? "simulated crash" : nil,
                inference: InferenceStats(count: uptime * 10, errors: 0, p50Ms: 0.8, p99Ms: Double.random(in: 1.5...4)))]
        }
        let report = HealthReport(
            deviceId: id, at: Date(), runtimeVersion: "sim", uptimeSeconds: uptime, desired: desired, modules: modules,
            system: SystemHealth(cpuPercent: Double.random(in: 5...40), memUsedBytes: 300 << 20, memTotalBytes: 1 << 30, diskFreeBytes: 8 << 30),
            telemetry: TelemetryHealth(buffered: Int.random(in: 0...500), oldestAgeSeconds: 5, uploaded: 1000, dropped: 0),
            reportIntervalSeconds: reportInterval)
        try await client.publish(Topics.reported(id), payload: FleetJSON.encode(report), qos: .atLeastOnce, retain: true)
        let sent = Date()
        reported.withLock { if $0[revision] == nil { $0[revision] = sent } }
    }

    /// When the device first reported each revision (after its PUBACK).
    var firstReports: [Int: Date] { reported.withLock { $0 } }

    /// From now on, reports show the module crash-looping (the change the benchmark times).
    func startCrashLoop() { crashLooping.withLock { $0 = true } }

    /// The highest desired revision received so far (0 before any).
    var latestRevision: Int { received.withLock { $0.keys.max() ?? 0 } }

    /// When each revision arrived.
    var arrivals: [Int: Date] { received.withLock { $0 } }

    func stop() { client.disconnect() }

    private func receive(_ message: MQTTMessage) {
        let desired: DesiredState?
        if let hubKey {
            desired = try? hubKey.open(message.payload, for: id)
        } else {
            desired = (try? FleetJSON.decode(SignedEnvelope.self, from: message.payload))
                .flatMap { Data(base64Encoded: $0.payload) }
                .flatMap { try? FleetJSON.decode(DesiredState.self, from: $0) }
        }
        guard let desired else { return }
        let now = Date()
        let fresh = received.withLock { received in
            guard received[desired.revision] == nil else { return false }
            received[desired.revision] = now
            return true
        }
        guard fresh else { return }
        state.withLock { state in
            let before = Dictionary((state?.modules ?? []).map { ($0.spec.name, $0) }) { first, _ in first }
            guard (state?.revision ?? 0) < desired.revision else { return }
            state = AppliedState(revision: desired.revision, at: now, modules: desired.modules.map { spec in
                let previous = before[spec.name]
                let outcome = previous.map { Behaviour($0.spec.env).outcome } ?? .applied
                // A rolled-back module keeps running what it ran before.
                let ran = outcome == .rolledBack ? previous?.previousDigest : previous?.spec.bundle.digest
                return AppliedState.Module(spec: spec, previousDigest: ran ?? previous?.spec.bundle.digest)
            })
        }
        // As the runtime does, report as soon as the state changed.
        Task { try? await report(revision: desired.revision) }
    }
}

/// How a simulated device handles a module, from the module's environment in the
/// manifest: `FLEET_SIMULATOR_OUTCOME` (`applied`, `failed` or `rolled-back`),
/// `FLEET_SIMULATOR_ERROR_RATE` (share of inference requests that fail),
/// `FLEET_SIMULATOR_P99_MS` and `FLEET_SIMULATOR_SHADOW_AGREEMENT` (share of shadow
/// samples that agree). Rollout tests and benchmarks steer the fleet with them.
struct Behaviour: Equatable {
    enum Outcome: String, Equatable {
        case applied, failed
        case rolledBack = "rolled-back"
    }

    var outcome: Outcome
    var errorRate: Double
    var p99Ms: Double?
    var shadowAgreement: Double

    init(_ env: [String: String]) {
        outcome = env["FLEET_SIMULATOR_OUTCOME"].flatMap(Outcome.init(rawValue:)) ?? .applied
        errorRate = env["FLEET_SIMULATOR_ERROR_RATE"].flatMap(Double.init) ?? 0
        p99Ms = env["FLEET_SIMULATOR_P99_MS"].flatMap(Double.init)
        shadowAgreement = env["FLEET_SIMULATOR_SHADOW_AGREEMENT"].flatMap(Double.init) ?? 1
    }
}
