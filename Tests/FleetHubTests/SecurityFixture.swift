import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Logging

/// A hub workspace whose broker is `mqtts://127.0.0.1:PORT` on a free port, with its
/// certificate authority, and helpers to enroll devices, start the broker on the
/// configuration `broker-config` writes, and connect as a device.
final class SecurityFixture: Sendable {
    let hub: HubFixture
    let port: Int
    let authority: CertificateAuthority

    init(brokerHosts: [String] = ["127.0.0.1", "localhost"]) throws {
        port = try Fixtures.freePort()
        hub = try HubFixture(broker: "mqtts://127.0.0.1:\(port)", insecure: false)
        authority = try CertificateAuthority.create(in: hub.workspace.certificateAuthorityFolder, brokerHosts: brokerHosts)
    }

    var workspace: Workspace { hub.workspace }

    /// Registers device `id` and writes its config (and certificate files) into the test folder.
    func enroll(_ id: String, tags: [String: String] = [:]) throws -> DeviceConfig {
        let path = hub.directory.file("devices/\(id)/\(id).yaml")
        try FileManager.default.createDirectory(
            atPath: hub.directory.file("devices/\(id)"), withIntermediateDirectories: true)
        let (config, _) = try hub.devices.add(id: id, tags: tags)
        let enrolled = try DeviceEnrollment(workspace: workspace).credentials(for: config, configPath: path)
        try enrolled.save(to: path)
        return enrolled
    }

    /// Writes the broker configuration and starts mosquitto on it.
    func startBroker() async throws -> TLSBroker {
        let written = try BrokerConfiguration(workspace: workspace, listen: "127.0.0.1:\(port)", runAs: NSUserName())
            .write(to: hub.directory.url.appendingPathComponent("broker"))
        return try await TLSBroker.start(configFile: written.configFile, port: port)
    }

    /// Rewrites the broker configuration (new revocation list) and restarts the broker.
    func reload(_ broker: TLSBroker) async throws {
        try BrokerConfiguration(workspace: workspace, listen: "127.0.0.1:\(port)", runAs: NSUserName())
            .write(to: hub.directory.url.appendingPathComponent("broker"))
        try await broker.restart()
    }

    /// An MQTT client set up from a device config the way the runtime does: TLS with the
    /// config's CA, certificate and key, connecting to `host` (default: the URL's).
    func client(_ config: DeviceConfig, host: String? = nil, clientId: String? = nil) throws -> MQTTClient {
        let address = try BrokerAddress(config.broker.url)
        var logger = Logger(label: "security-test.\(config.deviceId)")
        logger.logLevel = .critical
        return try MQTTClient(MQTTConfiguration(
            host: host ?? address.host, port: address.port, clientId: clientId ?? "\(config.deviceId)-\(UUID().uuidString.prefix(6))",
            tls: MQTTTLS(caFile: config.broker.caFile ?? "", certFile: config.broker.certFile, keyFile: config.broker.keyFile),
            reconnectBackoff: BackoffSchedule(initial: .milliseconds(200), maximum: .seconds(1)), connectTimeout: .seconds(3), acknowledgementTimeout: .seconds(3),
            logger: logger))
    }

    /// A client of the hub's, as serve's health ingestion connects (so it never pushes
    /// off a publisher's connection).
    func hubClient(as identity: HubIdentity = .healthIngestion) throws -> MQTTClient {
        var logger = Logger(label: "security-test.hub")
        logger.logLevel = .critical
        var configuration = try workspace.brokerConnection(as: identity, logger: logger)
        configuration.connectTimeout = .seconds(3)
        configuration.acknowledgementTimeout = .seconds(3)
        return try MQTTClient(configuration)
    }
}
