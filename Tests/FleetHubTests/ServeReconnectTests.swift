import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Logging
import Testing

/// The real `fleethub serve` through a broker restart: it logs the loss and the
/// reconnect, is back within 2 s of the broker, and shows a device online within 5 s
/// although the device re-announced itself before the hub was back (a `$share/`
/// subscription would never deliver those retained messages). And `--http` is checked.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct ServeReconnectTests {
    /// A device as the runtime behaves towards the broker: an offline last will, and on
    /// every (re)connect its online state and a fresh report, both retained. It sends
    /// no periodic report, so only what it publishes as it reconnects can bring it back.
    final class Device: Sendable {
        let client: MQTTClient
        private let announcer: Task<Void, Never>

        init(id: String, broker: MosquittoBroker) async throws {
            var logger = Logger(label: "serve-reconnect-test.device")
            logger.logLevel = .critical
            client = try MQTTClient(MQTTConfiguration(
                host: "127.0.0.1", port: broker.port, clientId: id,
                will: LastWill(topic: Topics.connection(id), payload: try FleetJSON.encode(ConnectionState(online: false))),
                reconnectBackoff: BackoffSchedule(initial: .milliseconds(100), maximum: .milliseconds(100)),
                connectTimeout: .seconds(5), acknowledgementTimeout: .seconds(5), logger: logger))
            let events = client.connectionEvents()
            try await client.connect()
            let client = client
            @Sendable func announce() async {
                var report = HealthFixture.report(id)
                report.reportIntervalSeconds = 1
                try? await client.publish(
                    Topics.connection(id), payload: try! FleetJSON.encode(ConnectionState(online: true, at: Date())), retain: true)
                try? await client.publish(Topics.reported(id), payload: try! FleetJSON.encode(report), retain: true)
            }
            await announce()
            announcer = Task {
                for await event in events where event == .connected { await announce() }
            }
        }

        func stop() {
            announcer.cancel()
            client.disconnect()
        }
    }

    @Test func afterABrokerRestartTheHubIsBackWithinTwoSecondsAndTheDeviceOnlineWithinFive() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let hub = try HubFixture(broker: broker.url)
        _ = try hub.devices.add(id: "gw-1", tags: [:])
        let log = hub.directory.file("serve.log")
        let server = try ChildProcess(
            Fixtures.builtExecutable("fleethub"),
            ["serve", "--http", "127.0.0.1:\(try Fixtures.freePort())", "--workspace", hub.workspace.root.path], outputPath: log)
        defer { server.stop() }
        func serveLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        #expect(await eventually { serveLog().contains("ingesting device health") }, "\(serveLog())")

        let device = try await Device(id: "gw-1", broker: broker)
        defer { device.stop() }
        let health = FleetHealth(workspace: hub.workspace)
        #expect(try await eventually { try health.device(id: "gw-1").summary.connectivity == .online })

        // Down for longer than the device's heartbeat timeout (3 report intervals of 1 s).
        broker.stop()
        #expect(await eventually { serveLog().contains("lost the broker connection") }, "\(serveLog())")
        #expect(try await eventually(timeout: .seconds(10)) { try health.device(id: "gw-1").summary.connectivity == .offline })
        // Long enough for the hub's back-off to reach its 1 s cap: the device, retrying
        // every 0.1 s, is back and announces itself before the hub is.
        try await Task.sleep(for: .seconds(3))
        let reconnectsBefore = serveLog().components(separatedBy: "reconnected to the broker").count
        try await broker.restart()
        let returned = ContinuousClock.now

        #expect(await eventually(timeout: .seconds(2)) {
            serveLog().components(separatedBy: "reconnected to the broker").count > reconnectsBefore
        }, "the hub did not log a reconnect within 2 s: \(serveLog())")
        let online = try await eventually(timeout: .seconds(5)) {
            try health.device(id: "gw-1").summary.connectivity == .online
        }
        #expect(online, "the device is not online 5 s after the broker's return")
        print("broker back → device online at the hub: \(ContinuousClock.now - returned)")
    }

    @Test func anInvalidOrTakenHTTPAddressIsRefusedNamingThePort() async throws {
        let hub = try HubFixture()
        func serve(_ address: String) async throws -> (status: Int32, output: String) {
            let log = hub.directory.file("serve-\(UUID().uuidString).log")
            let process = try ChildProcess(
                Fixtures.builtExecutable("fleethub"), ["serve", "--http", address, "--workspace", hub.workspace.root.path],
                outputPath: log)
            let status = try await process.waitForExit(timeout: .seconds(20))
            return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        let invalid = try await serve("127.0.0.1:99999")
        #expect(invalid.status != 0)
        #expect(invalid.output.contains("--http '127.0.0.1:99999' is not HOST:PORT with a port from 0 to 65535"), "\(invalid.output)")

        let taken = try TakenPort()
        defer { taken.close() }
        let inUse = try await serve("127.0.0.1:\(taken.port)")
        #expect(inUse.status != 0)
        #expect(inUse.output.contains("port \(taken.port) is already in use"), "\(inUse.output)")
        #expect(!inUse.output.contains("bind(descriptor"), "\(inUse.output)")
    }
}

/// A loopback port something listens on, for the test's lifetime.
final class TakenPort: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(descriptor, raw, length) == 0 && listen(descriptor, 1) == 0 && getsockname(descriptor, raw, &length) == 0
            }
        }
        guard listening else { throw FixtureError.noFreePort }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(descriptor) }
}
