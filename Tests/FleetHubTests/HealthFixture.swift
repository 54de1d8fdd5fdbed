import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Logging

/// Builds health reports and plays devices on a real broker for the health tests.
enum HealthFixture {
    static func report(
        _ deviceId: String, revision: Int = 1, status: DesiredStateStatus.Status = .applied, error: String? = nil,
        modules: [ModuleHealth] = [module("iris")], cpu: Double = 10
    ) -> HealthReport {
        HealthReport(
            deviceId: deviceId, at: Date(), runtimeVersion: "0.1.0", uptimeSeconds: 60,
            desired: DesiredStateStatus(revision: revision, status: status, error: error), modules: modules,
            system: SystemHealth(cpuPercent: cpu, memUsedBytes: 1 << 20, memTotalBytes: 1 << 30, diskFreeBytes: 1 << 30),
            telemetry: TelemetryHealth(buffered: 3, oldestAgeSeconds: 1, uploaded: 10, dropped: 0))
    }

    static func module(_ name: String, status: ModuleHealth.Status = .running, restarts: Int = 0, error: String? = nil) -> ModuleHealth {
        ModuleHealth(
            name: name, bundleDigest: ContentDigest(of: Data(name.utf8)), status: status, restarts: restarts,
            lastError: error, inference: InferenceStats(count: 100, errors: 0, p50Ms: 0.8, p99Ms: 2.5))
    }

    static func client(_ broker: MosquittoBroker, id: String = "device-\(UUID().uuidString.prefix(6))") async throws -> MQTTClient {
        var logger = Logger(label: "health-test")
        logger.logLevel = .critical
        let client = try MQTTClient(MQTTConfiguration(
            host: "127.0.0.1", port: broker.port, clientId: id, connectTimeout: .seconds(5),
            acknowledgementTimeout: .seconds(5), logger: logger))
        try await client.connect()
        return client
    }

    /// Starts ingestion for `workspace`, waits until it is subscribed, and returns the task to cancel.
    static func startIngestion(_ ingestion: HealthIngestion) async throws -> Task<Void, any Error> {
        let subscribed = AsyncStream<Void>.makeStream()
        let task = Task { try await ingestion.run { subscribed.continuation.yield() } }
        var iterator = subscribed.stream.makeAsyncIterator()
        _ = await iterator.next()
        return task
    }

    static func quietIngestion(_ workspace: Workspace) -> HealthIngestion {
        var logger = Logger(label: "fleethub.health.test")
        logger.logLevel = .critical
        return HealthIngestion(workspace: workspace, flushInterval: .milliseconds(50), logger: logger)
    }
}
