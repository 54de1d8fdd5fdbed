import FleetCore
import Foundation
import Logging
import Synchronization

/// One simulated device: its own MQTT session with the offline last will, the
/// retained online state, its desired-state subscription, and health reports as
/// the runtime sends them (DESIGN §3, §6).
final class SimulatedDevice: Sendable {
    let id: String
    private let client: MQTTClient
    private let startedAt = Date()
    private let received = Mutex<[Int: Date]>([:])
    private let crashLooping = Mutex(false)
    private let hubKey: HubPublicKey?

    init(id: String, broker: BrokerAddress, hubKey: HubPublicKey?) throws {
        self.id = id
        self.hubKey = hubKey
        var logger = Logger(label: "fleet-simulator.\(id)")
        logger.logLevel = .error
        client = try MQTTClient(MQTTConfiguration(
            host: broker.host, port: broker.port, clientId: id, keepAliveSeconds: 60,
            will: LastWill(topic: Topics.connection(id), payload: try FleetJSON.encode(ConnectionState(online: false))),
            connectTimeout: .seconds(60), acknowledgementTimeout: .seconds(60), logger: logger))
    }

    /// Connects, announces itself online, subscribes to its desired state and reports.
    func start() async throws {
        try await client.connect()
        try await client.publish(
            Topics.connection(id), payload: FleetJSON.encode(ConnectionState(online: true, at: Date(), runtimeVersion: "sim")),
            qos: .atLeastOnce, retain: true)
        try await client.subscribe(Topics.desired(id)) { [self] message in receive(message) }
        // As the runtime does, report once on start, then every interval.
        try await report(revision: latestRevision)
    }

    /// Publishes one health report (QoS 1, retained).
    func report(revision: Int) async throws {
        let looping = crashLooping.withLock { $0 }
        let module = ModuleHealth(
            name: "scorer", bundleDigest: ContentDigest(of: Data(id.utf8)),
            status: looping ? .backoff : .running, restarts: looping ? 99 : 0, lastExitCode: looping ? 1 : nil,
            lastError: looping ? "simulated crash" : nil,
            inference: InferenceStats(count: Int(Date().timeIntervalSince(startedAt)) * 10, errors: 0, p50Ms: 0.8, p99Ms: Double.random(in: 1.5...4)))
        let report = HealthReport(
            deviceId: id, at: Date(), runtimeVersion: "sim", uptimeSeconds: Int(Date().timeIntervalSince(startedAt)),
            desired: DesiredStateStatus(revision: revision, status: .applied), modules: [module],
            system: SystemHealth(cpuPercent: Double.random(in: 5...40), memUsedBytes: 300 << 20, memTotalBytes: 1 << 30, diskFreeBytes: 8 << 30),
            telemetry: TelemetryHealth(buffered: Int.random(in: 0...500), oldestAgeSeconds: 5, uploaded: 1000, dropped: 0))
        try await client.publish(Topics.reported(id), payload: FleetJSON.encode(report), qos: .atLeastOnce, retain: true)
    }

    /// From now on, reports show the module crash-looping (the change the benchmark times).
    func startCrashLoop() { crashLooping.withLock { $0 = true } }

    /// The highest desired revision received so far (0 before any).
    var latestRevision: Int { received.withLock { $0.keys.max() ?? 0 } }

    /// When each revision arrived.
    var arrivals: [Int: Date] { received.withLock { $0 } }

    func stop() { client.disconnect() }

    private func receive(_ message: MQTTMessage) {
        let revision: Int?
        if let hubKey {
            revision = try? hubKey.open(message.payload, for: id).revision
        } else {
            revision = (try? FleetJSON.decode(SignedEnvelope.self, from: message.payload))
                .flatMap { Data(base64Encoded: $0.payload) }
                .flatMap { try? FleetJSON.decode(DesiredState.self, from: $0) }?.revision
        }
        guard let revision else { return }
        let now = Date()
        received.withLock { if $0[revision] == nil { $0[revision] = now } }
    }
}
