import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// `HealthIngestion` against a real mosquitto: the shared subscription, the stored
/// state, and every kind of bad message refused while the hub keeps ingesting.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct HealthIngestionTests {
    @Test func storesGoodReportsAndCountsEveryRejectedOne() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let hub = try HubFixture(broker: broker.url)
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "a"])
        _ = try hub.devices.add(id: "gw-2", tags: ["site": "b"])
        let ingestion = HealthFixture.quietIngestion(hub.workspace)
        let task = try await HealthFixture.startIngestion(ingestion)
        defer { task.cancel() }
        let health = FleetHealth(workspace: hub.workspace)

        let device = try await HealthFixture.client(broker)
        defer { device.disconnect() }
        let good = try FleetJSON.encode(HealthFixture.report("gw-1", revision: 1, cpu: 42))
        try await device.publish(Topics.reported("gw-1"), payload: good, qos: .atLeastOnce, retain: true)
        try await device.publish(Topics.reported("gw-2"), payload: Data("not json".utf8), qos: .atLeastOnce)
        try await device.publish(Topics.reported("gw-2"), payload: Data(repeating: 0x20, count: 100_000), qos: .atLeastOnce)
        try await device.publish(Topics.reported("ghost"), payload: try FleetJSON.encode(HealthFixture.report("ghost")), qos: .atLeastOnce)
        try await device.publish(Topics.reported("gw-2"), payload: good, qos: .atLeastOnce)

        #expect(try await eventually {
            try health.rejections().reduce(0) { $0 + $1.count } == 4 && health.device(id: "gw-1").report != nil
        })
        let rejected = Dictionary(uniqueKeysWithValues: try health.rejections().map { ($0.reason, $0.count) })
        #expect(rejected == ["malformed": 1, "oversized": 1, "unknown-device": 1, "device-mismatch": 1])
        #expect(ingestion.counters.rejected == rejected)
        let gw1 = try health.device(id: "gw-1")
        #expect(gw1.report == (try FleetJSON.decode(HealthReport.self, from: good)))
        #expect(gw1.summary.connectivity == .online)
        #expect(gw1.history.map(\.cpuPercent) == [42])
        // The mismatched report did not land on gw-2.
        #expect(try health.device(id: "gw-2").report == nil)

        // Still ingesting after all that; and a device added while serving is accepted.
        _ = try hub.devices.add(id: "gw-3", tags: [:])
        try ingestion.refreshRegisteredDevices()
        try await device.publish(Topics.reported("gw-3"), payload: try FleetJSON.encode(HealthFixture.report("gw-3")), qos: .atLeastOnce)
        try await device.publish(Topics.reported("gw-2"), payload: try FleetJSON.encode(HealthFixture.report("gw-2", revision: 2)), qos: .atLeastOnce)
        #expect(try await eventually {
            try health.device(id: "gw-2").report?.desired.revision == 2 && health.device(id: "gw-3").report != nil
        })
        #expect(ingestion.counters.reports == 3)
    }

    @Test func whatDevicesPublishedRetainedBeforeTheHubSubscribedIsIngested() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let hub = try HubFixture(broker: broker.url)
        _ = try hub.devices.add(id: "gw-1", tags: [:])
        _ = try hub.devices.add(id: "gw-2", tags: [:])
        let device = try await HealthFixture.client(broker)
        defer { device.disconnect() }
        var stale = HealthFixture.report("gw-2")
        stale.at = Date(timeIntervalSinceNow: -3600)
        try await device.publish(Topics.reported("gw-1"), payload: try FleetJSON.encode(HealthFixture.report("gw-1", cpu: 7)), retain: true)
        try await device.publish(Topics.connection("gw-1"), payload: try FleetJSON.encode(ConnectionState(online: true, at: Date())), retain: true)
        try await device.publish(Topics.reported("gw-2"), payload: try FleetJSON.encode(stale), retain: true)

        // A `$share/` subscription delivers none of these; the ingestion reads them once it is subscribed.
        let task = try await HealthFixture.startIngestion(HealthFixture.quietIngestion(hub.workspace))
        defer { task.cancel() }
        let health = FleetHealth(workspace: hub.workspace)
        #expect(try await eventually { try health.device(id: "gw-1").report?.system.cpuPercent == 7 })
        #expect(try health.device(id: "gw-1").summary.connectivity == .online)
        // A report retained an hour ago counts as seen an hour ago, not now.
        #expect(try await eventually { try health.device(id: "gw-2").report != nil })
        #expect(try health.device(id: "gw-2").summary.connectivity == .offline)
    }

    @Test func historyIsBoundedPerDevice() async throws {
        let hub = try HubFixture()
        _ = try hub.devices.add(id: "gw-1", tags: [:])
        let ingestion = HealthFixture.quietIngestion(hub.workspace)
        try ingestion.refreshRegisteredDevices()
        for index in 0..<(ingestion.writer.historyLimit + 15) {
            let payload = try FleetJSON.encode(HealthFixture.report("gw-1", cpu: Double(index)))
            ingestion.handle(MQTTMessage(topic: Topics.reported("gw-1"), payload: payload, qos: .atLeastOnce, retained: false))
            if index % 10 == 0 { try await ingestion.writer.flush() }
        }
        try await ingestion.writer.flush()
        let history = try FleetHealth(workspace: hub.workspace).device(id: "gw-1").history
        #expect(history.count == ingestion.writer.historyLimit)
        #expect(history.last?.cpuPercent == Double(ingestion.writer.historyLimit + 14))
    }

    @Test func lastWillTurnsTheDeviceOffline() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let hub = try HubFixture(broker: broker.url)
        _ = try hub.devices.add(id: "gw-1", tags: [:])
        let task = try await HealthFixture.startIngestion(HealthFixture.quietIngestion(hub.workspace))
        defer { task.cancel() }
        let health = FleetHealth(workspace: hub.workspace)

        let online = try await HealthFixture.client(broker)
        defer { online.disconnect() }
        try await online.publish(Topics.connection("gw-1"), payload: Data(#"{"online":true}"#.utf8), qos: .atLeastOnce, retain: true)
        #expect(try await eventually { try health.device(id: "gw-1").summary.connectivity == .online })

        // mosquitto_sub plays the device: it connects with the offline last will, and is
        // killed once it is connected (it printed the retained online state).
        let subscriber = try #require(Fixtures.which("mosquitto_sub"))
        let logs = try TemporaryDirectory(prefix: "health-will")
        let output = logs.file("sub.log")
        let device = try ChildProcess(subscriber, [
            "-h", "127.0.0.1", "-p", "\(broker.port)", "-i", "gw-1", "-t", Topics.connection("gw-1"),
            "--will-topic", Topics.connection("gw-1"), "--will-payload", #"{"online":false}"#, "--will-qos", "1", "--will-retain",
        ], outputPath: output)
        defer { device.stop() }
        #expect(try await eventually { (try? String(contentsOfFile: output, encoding: .utf8))?.contains("true") == true })
        device.signal(SIGKILL)
        #expect(try await eventually { try health.device(id: "gw-1").summary.connectivity == .offline })
        #expect(try health.device(id: "gw-1").summary.offlineSince != nil)
    }
}
