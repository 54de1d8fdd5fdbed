import FleetCore
import Foundation

/// Gives a newly added device its credentials: with an `mqtts://` broker, a client
/// certificate whose common name is the device id, its key (0600) and the CA
/// certificate, written next to its config file; with an explicitly insecure plain
/// broker, the broker login `DeviceRegistry.add` made. Always a bundle-download token,
/// and for an `https://` public URL the CA to check the hub's certificate against.
public struct DeviceEnrollment: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Registers device `id` and writes its config file (and, with TLS, its certificate
    /// and key next to it), all or nothing: when anything fails, the device is not
    /// registered and no file of it is left. An existing `configPath` is replaced only
    /// with `overwrite`. `customise` adds the settings the hub does not keep (data dir,
    /// local API, storage).
    public func add(
        id: String, tags: [String: String], configPath: String, overwrite: Bool = false,
        customise: (inout DeviceConfig) -> Void = { _ in }
    ) throws -> RolloutChange {
        try refuseToReplace(configPath, overwrite: overwrite)
        return try removingWrittenFiles(of: id, configPath: configPath) {
            try DeviceRegistry(workspace: workspace).add(id: id, tags: tags) { config in
                try write(config, to: configPath, customise: customise)
            }.change
        }
    }

    /// Writes the config file of registered device `id` again, for one that was lost:
    /// a new certificate and key (TLS) or broker password (plain), and the bundle token
    /// that goes with them. The previous config's token and password stop working; its
    /// certificate stays valid until it expires or the device is revoked.
    public func export(
        id: String, configPath: String, overwrite: Bool = false, customise: (inout DeviceConfig) -> Void = { _ in }
    ) throws {
        try refuseToReplace(configPath, overwrite: overwrite)
        _ = try DeviceRegistry(workspace: workspace).show(id: id)
        try removingWrittenFiles(of: id, configPath: configPath) {
            _ = try DeviceRegistry(workspace: workspace).renewLogin(id: id) { config in
                try write(config, to: configPath, customise: customise)
            }
        }
    }

    private func refuseToReplace(_ configPath: String, overwrite: Bool) throws {
        if !overwrite, FileManager.default.fileExists(atPath: configPath) { throw RegistryError.configFileExists(configPath) }
    }

    private func write(_ registered: DeviceConfig, to configPath: String, customise: (inout DeviceConfig) -> Void) throws {
        var config = try credentials(for: registered, configPath: configPath)
        customise(&config)
        try config.save(to: configPath)
    }

    /// Runs `body`; when it throws, deletes the config, certificate and key of `id`
    /// that it created (files that were there before are left).
    private func removingWrittenFiles<T>(of id: String, configPath: String, _ body: () throws -> T) throws -> T {
        let folder = URL(fileURLWithPath: configPath).standardizedFileURL.deletingLastPathComponent()
        let files = [configPath, folder.appendingPathComponent("\(id).crt").path, folder.appendingPathComponent("\(id).key").path]
        let existing = Set(files.filter { FileManager.default.fileExists(atPath: $0) })
        do {
            return try body()
        } catch {
            for file in files where !existing.contains(file) { try? FileManager.default.removeItem(atPath: file) }
            throw error
        }
    }

    /// Completes `config` (from `DeviceRegistry.add`) for the file at `configPath`.
    public func credentials(for config: DeviceConfig, configPath: String, now: Date = Date()) throws -> DeviceConfig {
        var config = config
        let settings = try workspace.config()
        let address = try HubConfig.checkedBroker(settings.broker)
        let serial: String
        let folder = URL(fileURLWithPath: configPath).standardizedFileURL.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw RegistryError.unwritable(folder.path, reason: error.localizedDescription)
        }
        if let trusted = try workspace.httpsTrustedCA() {
            let hubCAPath = folder.appendingPathComponent("hub-ca.crt").path
            try Data(contentsOf: URL(fileURLWithPath: trusted)).write(to: URL(fileURLWithPath: hubCAPath))
            config.hub.caFile = hubCAPath
        }
        if address.tls {
            let authority = try workspace.certificateAuthority()
            let issued = try authority.issue(.client(config.deviceId), now: now)
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
