import FleetCore
import Foundation
import FleetSQL

/// A hub's home folder: the registry's database (its own SQLite file, or the PostgreSQL
/// database several hub instances share), the blob store (or its local copy, when the
/// blobs live in a bucket), the signing key pair and the settings. Every `fleethub`
/// command opens one; `fleethub init` creates it.
public struct Workspace: Sendable {
    public let root: URL
    public let database: SQLDatabase
    public let blobs: BlobStore
    public let signingKey: HubSigningKey

    static let databaseName = "hub.sqlite"
    static let configName = "config.json"
    static let privateKeyName = "hub-signing.key"
    static let publicKeyName = "hub-signing.pub"

    /// The folder a command uses when `--workspace` is not given: `$FLEETHUB_HOME`,
    /// else `./.fleethub`.
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let home = environment["FLEETHUB_HOME"], !home.isEmpty {
            return URL(fileURLWithPath: home)
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".fleethub")
    }

    /// Creates a workspace in `root` (which must not already hold one) with a new key;
    /// a blob bucket it cannot read leaves nothing behind.
    @discardableResult
    public static func create(at root: URL, config: HubConfig) throws -> Workspace {
        _ = try HubConfig.checkedBroker(config.broker)
        var config = config
        config.publicURL = try HubConfig.checkedPublicURL(config.publicURL)
        try config.checkPublicURLScheme()
        let blobs = BlobStore(root: root.appendingPathComponent("blobs"), settings: config.blobStorage)
        try checkBucket(of: blobs)
        let manager = FileManager.default
        if manager.fileExists(atPath: root.appendingPathComponent(configName).path)
            || manager.fileExists(atPath: root.appendingPathComponent(databaseName).path)
        {
            throw WorkspaceError.alreadyExists(root.path)
        }
        // The workspace holds the CA and signing keys and the tokens: owner only.
        try createPrivateDirectory(root.path)
        try blobs.createFolders()
        let key = HubSigningKey()
        try writeSecretFile(Data((key.base64PrivateKey + "\n").utf8), to: root.appendingPathComponent(privateKeyName).path)
        try Data((key.publicKey.base64 + "\n").utf8).write(to: root.appendingPathComponent(publicKeyName))
        let location = try databaseLocation(root: root, config: config)
        if case .sqlite(let path) = location {
            // Created empty and 0600 before SQLite opens it: SQLite gives its -wal and -shm
            // files the database file's mode, and they hold the broker password hashes too.
            try writeSecretFile(Data(), to: path)
        }
        let database = try HubDatabase.open(location, creating: true)
        try save(config, in: root)
        return Workspace(root: root, database: database, blobs: blobs, signingKey: key)
    }

    /// Opens the workspace in `root`, migrating its database to the current schema.
    public static func open(at root: URL) throws -> Workspace {
        let configURL = root.appendingPathComponent(configName)
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw WorkspaceError.missing(root.path)
        }
        let keyPath = root.appendingPathComponent(privateKeyName).path
        let keyText: String
        do {
            keyText = try String(contentsOfFile: keyPath, encoding: .utf8)
        } catch {
            throw WorkspaceError.unreadable(keyPath, reason: error.localizedDescription)
        }
        let key = try HubSigningKey(base64PrivateKey: keyText)
        let config = try read(configURL)
        let database = try HubDatabase.open(try databaseLocation(root: root, config: config))
        let settings = config.blobStorage
        return Workspace(
            root: root, database: database, blobs: BlobStore(root: root.appendingPathComponent("blobs"), settings: settings),
            signingKey: key)
    }

    /// The workspace's own SQLite file unless the config names a database.
    static func databaseLocation(root: URL, config: HubConfig) throws -> SQLLocation {
        guard let database = config.database else { return .sqlite(path: root.appendingPathComponent(databaseName).path) }
        return try SQLLocation(parsing: database)
    }

    /// The current settings, read from disk each time so a long-running `serve` sees changes.
    public func config() throws -> HubConfig {
        try Self.read(root.appendingPathComponent(Self.configName))
    }

    private static func read(_ url: URL) throws -> HubConfig {
        do {
            return try FleetJSON.decode(HubConfig.self, from: Data(contentsOf: url))
        } catch {
            throw WorkspaceError.unreadable(url.path, reason: "\(error)")
        }
    }

    /// The thresholds health and alerts are judged by: the defaults, with what the
    /// operator set (`drift-alert-psi`); a long-running `serve` reads them when it starts.
    public var healthPolicy: HealthPolicy {
        var policy = HealthPolicy()
        if let psi = try? config().driftAlertPSI { policy.driftAlertPSI = psi }
        return policy
    }

    /// Changes one setting (`fleethub config set KEY VALUE`). A change of where the blobs
    /// live is saved only once the bucket can be read, and moving them into a bucket
    /// uploads the workspace's blobs first, so every instance serves every bundle.
    public func set(_ key: String, to value: String) throws {
        guard let key = HubConfig.Key(rawValue: key) else { throw WorkspaceError.unknownSetting(key) }
        var config = try config()
        try config.set(key, to: value)
        if key == .database {
            // Reachable and migrated before the hub is pointed at it.
            _ = try HubDatabase.open(try Self.databaseLocation(root: root, config: config))
        }
        if key.isBlobSetting {
            let moved = BlobStore(root: blobs.root, settings: config.blobStorage)
            try Self.checkBucket(of: moved)
            try moved.uploadLocalBlobs()
        }
        try Self.save(config, in: root)
    }

    /// Fails, naming the setting to fix, unless `blobs` is the local folder or a bucket
    /// these settings can read.
    private static func checkBucket(of blobs: BlobStore) throws {
        guard let settings = blobs.settings else { return }
        do {
            try blobs.bucket()?.check()
        } catch {
            throw WorkspaceError.unusableBlobBucket(settings.url, reason: "\(error)")
        }
    }

    /// Remembers where `broker-config` wrote the broker's files.
    func record(brokerFolder: String) throws {
        var config = try config()
        config.brokerFolder = brokerFolder
        try Self.save(config, in: root)
    }

    private static func save(_ config: HubConfig, in root: URL) throws {
        // The file may hold the broker password.
        try writeSecretFile(try FleetJSON.prettyEncoder().encode(config), to: root.appendingPathComponent(configName).path)
    }
}
