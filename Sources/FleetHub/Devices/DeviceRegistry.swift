import FleetCore
import Foundation
import FleetSQL

/// A registered device, with the desired-state revision the hub staged for it and the
/// one the broker has acknowledged.
public struct Device: Codable, Equatable, Sendable {
    public var id: String
    public var tags: [String: String]
    public var createdAt: Date
    /// The latest staged revision; nil before the first.
    public var revision: Int?
    /// The latest revision the broker acknowledged; lower than `revision` while pending.
    public var publishedRevision: Int?
}

/// The devices of the fleet and their tags. Every change restages desired states in
/// the same transaction, so exactly the devices whose state changed get a new revision.
public struct DeviceRegistry: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Registers a device and returns the config file it needs to join the fleet, with a
    /// new broker login (user name = device id); the hub keeps only the password's hash.
    /// `completing` runs inside the registration's transaction with that config: when it
    /// throws (its config file cannot be written, say), nothing is registered.
    public func add(
        id: String, tags: [String: String], now: Date = Date(), completing: (DeviceConfig) throws -> Void = { _ in }
    ) throws -> (config: DeviceConfig, change: RolloutChange) {
        try FleetName.check(id, as: .deviceId)
        let (config, passwordHash) = try newLogin(for: id)
        let change = try workspace.database.write { db in
            guard try !Self.exists(id, in: db) else { throw RegistryError.deviceExists(id) }
            try db.execute(
                "INSERT INTO device (id, createdAt) VALUES (?, ?)",
                [id, Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))])
            try db.execute("INSERT INTO deviceCredential (deviceId, passwordHash) VALUES (?, ?)", [id, passwordHash])
            try Self.insertTags(tags, for: id, in: db)
            let change = RolloutChange(changedDevices: try DesiredStateStager.stage(db, workspace: workspace, now: now), warnings: [])
            try completing(config)
            return change
        }
        return (config, change)
    }

    /// Gives registered device `id` a new broker login, for a config file written again;
    /// its previous password stops working. `completing` runs inside the transaction:
    /// when it throws, the previous login stays.
    public func renewLogin(id: String, completing: (DeviceConfig) throws -> Void) throws -> DeviceConfig {
        let (config, passwordHash) = try newLogin(for: id)
        try workspace.database.write { db in
            guard try Self.exists(id, in: db) else { throw RegistryError.unknownDevice(id) }
            try db.execute(
                """
                INSERT INTO deviceCredential (deviceId, passwordHash) VALUES (?, ?)
                ON CONFLICT(deviceId) DO UPDATE SET passwordHash = excluded.passwordHash
                """,
                [id, passwordHash])
            try completing(config)
        }
        return config
    }

    private func newLogin(for id: String) throws -> (config: DeviceConfig, passwordHash: String) {
        var config = try deviceConfig(for: id)
        let password = BrokerCredentials.newPassword()
        config.broker.username = id
        config.broker.password = password
        return (config, try BrokerCredentials.mosquittoHash(of: password))
    }

    /// Sets the tags in `set` and removes the keys in `remove`.
    public func tag(id: String, set: [String: String], remove: [String] = [], now: Date = Date()) throws -> RolloutChange {
        try workspace.database.write { db in
            guard try Self.exists(id, in: db) else { throw RegistryError.unknownDevice(id) }
            for key in remove + Array(set.keys) {
                try db.execute("DELETE FROM deviceTag WHERE deviceId = ? AND key = ?", [id, key])
            }
            try Self.insertTags(set, for: id, in: db)
            return RolloutChange(changedDevices: try DesiredStateStager.stage(db, workspace: workspace, now: now), warnings: [])
        }
    }

    /// Removes a device; it is sent an empty desired state, so it stops its modules.
    public func remove(id: String, now: Date = Date()) throws -> RolloutChange {
        try workspace.database.write { db in
            guard try db.execute("DELETE FROM device WHERE id = ?", [id]) > 0 else { throw RegistryError.unknownDevice(id) }
            return RolloutChange(changedDevices: try DesiredStateStager.stage(db, workspace: workspace, now: now), warnings: [])
        }
    }

    public func list() throws -> [Device] {
        try devices(id: nil)
    }

    public func show(id: String) throws -> Device {
        guard let device = try devices(id: id).first else { throw RegistryError.unknownDevice(id) }
        return device
    }

    /// Every device, or only `id`.
    private func devices(id: String?) throws -> [Device] {
        try workspace.database.read { db in
            var tags: [String: [String: String]] = [:]
            for row in try db.rows("SELECT deviceId, key, value FROM deviceTag WHERE (CAST(?1 AS TEXT) IS NULL OR deviceId = ?1)", [id]) {
                tags[row["deviceId"], default: [:]][row["key"]] = row["value"]
            }
            return try db.rows("""
                    SELECT d.id, d.createdAt, s.revision, s.publishedRevision FROM device d
                    LEFT JOIN desiredState s ON s.deviceId = d.id WHERE (CAST(?1 AS TEXT) IS NULL OR d.id = ?1) ORDER BY d.id
                    """, [id]
            ).map { row in
                Device(
                    id: row["id"], tags: tags[row["id"]] ?? [:], createdAt: row["createdAt"], revision: row["revision"],
                    publishedRevision: row["publishedRevision"])
            }
        }
    }

    /// The signed desired state last staged for `id`, as published on its topic.
    public func desiredState(id: String) throws -> DesiredState? {
        let envelope = try workspace.database.read { db in
            try db.value(as: Data.self, "SELECT envelope FROM desiredState WHERE deviceId = ?", [id])
        }
        return try envelope.map { try workspace.signingKey.publicKey.open($0, for: id) }
    }

    /// The config file of device `id` without its broker login: broker, hub public key
    /// and bundle base URL.
    public func deviceConfig(for id: String) throws -> DeviceConfig {
        let config = try workspace.config()
        return DeviceConfig(
            deviceId: id, broker: BrokerSettings(url: config.broker),
            hub: HubSettings(publicKey: workspace.signingKey.publicKey.base64, bundleBaseURL: config.publicURL))
    }

    private static func exists(_ id: String, in db: SQLTransaction) throws -> Bool {
        try db.value(as: Bool.self, "SELECT EXISTS(SELECT 1 FROM device WHERE id = ?)", [id]) ?? false
    }

    private static func insertTags(_ tags: [String: String], for id: String, in db: SQLTransaction) throws {
        for (key, value) in tags {
            try db.execute("INSERT INTO deviceTag (deviceId, key, value) VALUES (?, ?, ?)", [id, key, value])
        }
    }
}
