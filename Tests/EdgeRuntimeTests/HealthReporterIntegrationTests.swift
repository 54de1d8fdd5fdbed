import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Synchronization
import Testing

/// The daemon's health reports as the hub sees them: a real broker, bundles over real
/// HTTP, real module processes and a real state database.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct HealthReporterIntegrationTests {
    static func daemon(_ device: DeviceFixture, reportIntervalSeconds: Int? = nil) -> Task<Void, any Error> {
        var config = device.config
        config.reportIntervalSeconds = reportIntervalSeconds
        return Task {
            try await EdgeRuntimeDaemon(config: config, settings: RuntimeIntegrationTests.settings, logger: Logger(label: "runtime"))
                .run()
        }
    }

    @Test func aRetainedReportShowsTheAppliedRevisionAndTheRunningModule() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let daemon = Self.daemon(device)
        defer { daemon.cancel() }
        let bundle = try RuntimeIntegrationTests.service(version: 1)
        _ = try await device.publish(revision: 1, [try device.module("svc", bundle)])
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied) })

        // A hub that subscribes only now still gets the latest report: it is retained.
        var received: (HealthReport, MQTTMessage)?
        #expect(try await eventually(timeout: .seconds(5)) {
            received = try await ReportCollector.retained(device)
            return received?.0.desired == DesiredStateStatus(revision: 1, status: .applied)
                && received?.0.modules.first?.status == .running
        })
        let (report, message) = try #require(received)
        #expect(message.retained && message.qos == .atLeastOnce)
        #expect(report.deviceId == device.config.deviceId && report.runtimeVersion == runtimeVersion)
        #expect(report.modules == [ModuleHealth(name: "svc", bundleDigest: bundle.digest, status: .running)])
        #expect(report.system.memTotalBytes > 0 && report.system.memUsedBytes > 0 && report.system.diskFreeBytes > 0)
        #expect(report.telemetry == TelemetryHealth(buffered: 0, oldestAgeSeconds: 0, uploaded: 0, dropped: 0))
        #expect(message.payload.count < 1024)
        daemon.cancel()
        try await daemon.value
    }

    @Test func aCrashLoopingModuleIsReportedInBackoffWithoutFloodingTheBroker() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let collector = try await ReportCollector(device)
        defer { collector.stop() }
        let daemon = Self.daemon(device)
        defer { daemon.cancel() }
        // The module runs until the marker exists, then exits at every start.
        let marker = device.directory.file("crash")
        let crashing = try TestBundle.shellModule(
            name: "crash", version: 1, script: "while [ ! -e '\(marker)' ]; do sleep 0.05; done\necho crashing\nexit 3\n")
        _ = try await device.publish(revision: 1, [try device.module("crash", crashing)])
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied) })
        #expect(FileManager.default.createFile(atPath: marker, contents: nil))
        #expect(await eventually { ((try? device.status().modules.first?.restarts) ?? 0) >= 3 })
        let start = ContinuousClock.now
        let before = collector.reports.count
        let restartsBefore = try device.status().modules.first?.restarts ?? 0
        try await Task.sleep(for: .seconds(4))
        let seconds = Double((ContinuousClock.now - start).components.seconds)
        let published = collector.reports.count - before
        let restarts = (try device.status().modules.first?.restarts ?? 0) - restartsBefore
        // Each restart is two changes (crash, start); reports stay at about one a second.
        #expect(restarts >= 3)
        #expect(published >= 2 && Double(published) <= seconds + 1.5)
        let times = collector.reports.map(\.received)
        #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 > .milliseconds(900) })
        let last = try #require(collector.reports.last?.report.modules.first)
        #expect(last.name == "crash" && last.restarts > 0 && last.lastExitCode == 3)
        #expect(collector.reports.contains { $0.report.modules.first?.status == .backoff })
        daemon.cancel()
        try await daemon.value
    }

    @Test func anIdleDeviceReportsEveryInterval() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let collector = try await ReportCollector(device)
        defer { collector.stop() }
        let daemon = Self.daemon(device, reportIntervalSeconds: 1)
        defer { daemon.cancel() }
        #expect(await eventually(timeout: .seconds(5)) { !collector.reports.isEmpty })
        try await Task.sleep(for: .milliseconds(3500))
        let reports = collector.reports.map(\.report)
        #expect(reports.count >= 4)
        #expect(zip(reports, reports.dropFirst()).allSatisfy { $0.at < $1.at && $0.uptimeSeconds <= $1.uptimeSeconds })
        #expect(reports.allSatisfy { $0.desired == DesiredStateStatus(revision: 0, status: .applied) && $0.modules.isEmpty })
        daemon.cancel()
        try await daemon.value
    }

    @Test func aRefusedDesiredMessageIsReportedAtOnce() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let collector = try await ReportCollector(device)
        defer { collector.stop() }
        let daemon = Self.daemon(device)
        defer { daemon.cancel() }
        #expect(await eventually(timeout: .seconds(5)) { !collector.reports.isEmpty })
        try await Task.sleep(for: .milliseconds(1100))
        let before = collector.reports.count
        try await device.hub.publish(Topics.desired(device.config.deviceId), payload: Data("not an envelope".utf8))
        // Well before the 30 s interval.
        #expect(await eventually(timeout: .seconds(3)) { collector.reports.count > before })
        #expect(try device.status().lastRefusal != nil)
        daemon.cancel()
        try await daemon.value
    }

    @Test func afterTheBrokerComesBackTheLatestReportIsPublishedAgain() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let daemon = Self.daemon(device)
        defer { daemon.cancel() }
        _ = try await device.publish(revision: 1, [try device.module("svc", try RuntimeIntegrationTests.service(version: 1))])
        #expect(await eventually(timeout: .seconds(10)) {
            (try? await ReportCollector.retained(device))??.0.desired == DesiredStateStatus(revision: 1, status: .applied)
        })
        // This broker keeps nothing across a restart: the report must come from the device again.
        try await device.broker.restart()
        #expect(await eventually(timeout: .seconds(15)) {
            (try? await ReportCollector.retained(device))??.0.desired == DesiredStateStatus(revision: 1, status: .applied)
        })
        daemon.cancel()
        try await daemon.value
    }
}

/// Every health report of the test device, in order of arrival, as a hub subscribed to it.
final class ReportCollector: Sendable {
    struct Received: Sendable {
        var report: HealthReport
        var received: ContinuousClock.Instant
    }

    private final class Log: Sendable {
        let entries = Mutex<[Received]>([])
    }

    private let client: MQTTClient
    private let log = Log()
    private let reader: Task<Void, Never>

    init(_ device: DeviceFixture) async throws {
        client = try MQTTClient(MQTTConfiguration(
            host: "127.0.0.1", port: device.broker.port, clientId: "test-collector-\(UUID().uuidString.prefix(6))"))
        try await client.connect()
        let messages = try await client.messages(Topics.reported(device.config.deviceId))
        reader = Task { [log] in
            for await message in messages {
                guard let report = try? FleetJSON.decode(HealthReport.self, from: message.payload) else { continue }
                log.entries.withLock { $0.append(Received(report: report, received: .now)) }
            }
        }
    }

    var reports: [Received] { log.entries.withLock { $0 } }

    func stop() {
        reader.cancel()
        client.disconnect()
    }

    /// The retained report a hub subscribing now gets first, if one arrives within a second.
    static func retained(_ device: DeviceFixture) async throws -> (HealthReport, MQTTMessage)? {
        let reader = try MQTTClient(MQTTConfiguration(
            host: "127.0.0.1", port: device.broker.port, clientId: "test-reader-\(UUID().uuidString.prefix(6))"))
        try await reader.connect()
        defer { reader.disconnect() }
        let messages = try await reader.messages(Topics.reported(device.config.deviceId))
        let first = Task<MQTTMessage?, Never> {
            for await message in messages { return message }
            return nil
        }
        let timeout = Task {
            try? await Task.sleep(for: .seconds(1))
            first.cancel()
        }
        defer { timeout.cancel() }
        guard let message = await first.value else { return nil }
        return (try FleetJSON.decode(HealthReport.self, from: message.payload), message)
    }
}
