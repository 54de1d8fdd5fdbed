import FleetCore
import Foundation

/// Gives a newly added device its credentials: with an `mqtts://` broker, a client
/// certificate whose common name is the device id, its key (0600) and the CA
/// certificate, written next to its config file; with an explicitly insecure plain
/// broker, the broker login `DeviceRegistry.add` made. Always a bundle-download token.
public struct DeviceEnrollment: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Completes `config` (from `DeviceRegistry.add`) for the file at `configPath`.
    public func credentials(for config: DeviceConfig, configPath: String, now: Date = Date()) throws -> DeviceConfig {
        var config = config
        let settings = try workspace.config()
        let address = try HubConfig.checkedBroker(settings.broker)
        let serial: String
        if address.tls {
            let authority = try workspace.certificateAuthority()
            let issued = try authority.issue(.client(config.deviceId), now: now)
            let folder = URL(fileURLWithPath: configPath).standardizedFileURL.deletingLastPathComponent()
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let certificatePath = folder.appendingPathComponent("\(config.deviceId).crt").path
            let keyPath = folder.appendingPathComponent("\(config.deviceId).key").path
            let caPath = folder.appendingPathComponent("fleet-ca.crt").path
            try issued.write(certificateTo: certificatePath, keyTo: keyPath)
            try Data(contentsOf: URL(fileURLWithPath: authority.certificatePath)).write(to: URL(fileURLWithPath: caPath))
            config.broker.caFile = caPath
            config.broker.certFile = certificatePath
            config.broker.keyFile = keyPath
            // The broker takes the identity from the certificate; no password is needed.
            config.broker.username = nil
            config.broker.password = nil
            serial = issued.serial
        } else {
            guard settings.allowsPlainMQTT else { throw SecurityError.plainBrokerRefused(settings.broker) }
            config.broker.insecure = true
            serial = Self.plainSerial
        }
        config.hub.token = try HTTPAccess.load(from: workspace).deviceToken(for: config.deviceId, serial: serial)
        return config
    }

    /// The certificate serial a device token is bound to when there is no certificate.
    static let plainSerial = "plain"
}
