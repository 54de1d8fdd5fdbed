import FleetCore
import Foundation
import GRDB
import Logging

/// Publishes every staged desired state that the broker has not yet acknowledged:
/// signed, retained, QoS 1, on `Topics.desired(id)`. A state is marked published only
/// after the broker's PUBACK, so a failed run is simply repeated by the next one.
public struct DesiredStatePublisher: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Device ids whose latest revision is not yet on the broker.
    public func pending() throws -> [String] {
        try workspace.database.read { db in
            try String.fetchAll(
                db, sql: "SELECT deviceId FROM desiredState WHERE publishedRevision < revision ORDER BY deviceId")
        }
    }

    /// Publishes all pending states and returns the devices published.
    @discardableResult
    public func publishPending() async throws -> [String] {
        let rows = try workspace.database.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT deviceId, revision, envelope FROM desiredState WHERE publishedRevision < revision ORDER BY deviceId")
        }
        guard !rows.isEmpty else { return [] }
        let config = try workspace.config()
        var configuration = try workspace.brokerConnection(
            clientId: "fleethub-\(UUID().uuidString.prefix(8))", logger: Logger(label: "fleethub.publish"))
        configuration.connectTimeout = .seconds(5)
        configuration.acknowledgementTimeout = .seconds(10)
        let client = try MQTTClient(configuration)
        do {
            try await client.connect()
        } catch {
            throw PublishError.brokerUnavailable(config.broker, reason: "\(error)", pending: rows.count)
        }
        defer { client.disconnect() }
        var published: [String] = []
        for row in rows {
            let deviceId: String = row["deviceId"]
            let revision: Int = row["revision"]
            let envelope: Data = row["envelope"]
            do {
                try await client.publish(Topics.desired(deviceId), payload: envelope, qos: .atLeastOnce, retain: true)
            } catch {
                throw PublishError.brokerUnavailable(config.broker, reason: "\(error)", pending: rows.count - published.count)
            }
            try await workspace.database.write { db in
                try db.execute(
                    sql: "UPDATE desiredState SET publishedRevision = ? WHERE deviceId = ? AND publishedRevision < ?",
                    arguments: [revision, deviceId, revision])
            }
            published.append(deviceId)
        }
        return published
    }
}

/// Why staged desired states did not reach the broker. Nothing is lost: they stay
/// pending and the next `fleethub publish` (or any change) sends them.
public enum PublishError: Error, Equatable, CustomStringConvertible {
    case brokerUnavailable(String, reason: String, pending: Int)

    public var description: String {
        switch self {
        case .brokerUnavailable(let broker, let reason, let pending):
            "the change is saved, but \(pending) device state(s) could not be published to \(broker): \(reason); start the broker (or `fleethub config set broker URL`) and run `fleethub publish`"
        }
    }
}
