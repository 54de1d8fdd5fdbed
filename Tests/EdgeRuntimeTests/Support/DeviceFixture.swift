import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation

/// A device for integration tests: a real broker, a bundle server, a hub key, a data
/// dir, and a "hub" MQTT client that publishes signed desired states.
final class DeviceFixture: @unchecked Sendable {
    let broker: MosquittoBroker
    let server: BundleServer
    let hubKey = HubSigningKey()
    let directory: TemporaryDirectory
    let config: DeviceConfig
    let hub: MQTTClient
    var dataDirectory: DataDirectory { DataDirectory(config: config) }

    init(bytesPerSecond: Int = 0) async throws {
        broker = try await MosquittoBroker.start()
        server = try BundleServer(bytesPerSecond: bytesPerSecond)
        directory = try TemporaryDirectory(prefix: "device")
        config = DeviceConfig(
            deviceId: "gw-001", broker: BrokerSettings(url: broker.url, insecure: true),
            hub: HubSettings(publicKey: hubKey.publicKey.base64, bundleBaseURL: server.baseURL),
            dataDir: directory.file("data"), localAPI: LocalAPISettings(port: try Fixtures.freePort()))
        hub = try MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: broker.port, clientId: "test-hub-\(UUID().uuidString.prefix(6))"))
        try await hub.connect()
    }

    /// The spec of a module served from `bundle`.
    func module(_ name: String, _ bundle: TestBundle, order: Int = 0) throws -> ModuleSpec {
        try server.serve(bundle)
        return ModuleSpec(name: name, kind: .process, bundle: bundle.reference(baseURL: server.baseURL), startupOrder: order)
    }

    func desiredState(revision: Int, _ modules: [ModuleSpec]) -> DesiredState {
        DesiredState(deviceId: config.deviceId, revision: revision, issuedAt: Date(), deployments: [], modules: modules)
    }

    /// Publishes `envelope` retained on the device's desired topic.
    func publish(_ envelope: SignedEnvelope) async throws {
        try await hub.publish(Topics.desired(config.deviceId), payload: try FleetJSON.encode(envelope), retain: true)
    }

    func publish(revision: Int, _ modules: [ModuleSpec]) async throws -> SignedEnvelope {
        let envelope = try hubKey.sign(desiredState(revision: revision, modules))
        try await publish(envelope)
        return envelope
    }

    /// The retained connection state of the device.
    func connectionState() async throws -> ConnectionState? {
        try await retained(Topics.connection(config.deviceId), as: ConnectionState.self)
    }

    /// The device's retained health report.
    func healthReport() async throws -> HealthReport? {
        try await retained(Topics.reported(config.deviceId), as: HealthReport.self)
    }

    private func retained<Message: Decodable>(_ topic: String, as type: Message.Type) async throws -> Message? {
        let reader = try MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: broker.port, clientId: "test-reader-\(UUID().uuidString.prefix(6))"))
        try await reader.connect()
        defer { reader.disconnect() }
        let messages = try await reader.messages(topic)
        let first = Task<Data?, Never> {
            for await message in messages { return message.payload }
            return nil
        }
        let timeout = Task {
            try? await Task.sleep(for: .seconds(2))
            first.cancel()
        }
        defer { timeout.cancel() }
        guard let payload = await first.value else { return nil }
        return try FleetJSON.decode(Message.self, from: payload)
    }

    func status() throws -> RuntimeStatus {
        try StateStore(url: dataDirectory.database).status()
    }

    /// Stops the fixtures; module processes a failed test left running (found by their
    /// working directory in this device's data dir) are killed by pid.
    func stop() {
        for pid in processes(workingIn: dataDirectory.modules) { kill(pid, SIGKILL) }
        hub.disconnect()
        server.stop()
        broker.kill()
    }
}
