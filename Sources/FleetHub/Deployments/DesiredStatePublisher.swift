import FleetCore
import Foundation
import FleetSQL
import Logging

/// Publishes every staged desired state that the broker has not yet acknowledged:
/// signed, retained, QoS 1, on `Topics.desired(id)`. A state is marked published only
/// after the broker's PUBACK, so a failed run is simply repeated by the next one. Runs
/// take turns (`PublishingTurn`), so a device's retained revision never goes back.
public struct DesiredStatePublisher: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Device ids whose latest revision is not yet on the broker.
    public func pending() throws -> [String] {
        try workspace.database.read { db in
            try db.values(as: String.self, "SELECT deviceId FROM desiredState WHERE publishedRevision < revision ORDER BY deviceId")
        }
    }

    /// Publishes all pending states and returns the devices published.
    @discardableResult
    public func publishPending() async throws -> [String] {
        guard try !pending().isEmpty else { return [] }
        // Commands share one broker identity, so they connect only in their turn.
        let turn = try await PublishingTurn.take(in: workspace)
        defer { turn.end() }
        let config = try workspace.config()
        var configuration = try workspace.brokerConnection(as: .commands, logger: Logger(label: "fleethub.publish"))
        configuration.connectTimeout = .seconds(5)
        configuration.acknowledgementTimeout = .seconds(10)
        let client = try MQTTClient(configuration)
        do {
            try await client.connect()
        } catch {
            throw PublishError.brokerUnavailable(config.broker, reason: "\(error)", pending: try pending().count)
        }
        defer { client.disconnect() }
        return try await publish(using: client)
    }

    /// How many publishes wait for their PUBACK at once: a wave of ten thousand devices
    /// goes out in one round trip per this many, not one per device. The hub's broker
    /// connections let as many onto the wire (`MQTTConfiguration.publishesInFlight`).
    public static let publishesInFlight = 1000

    /// Publishes all pending states over `client`, which is connected (or reconnecting).
    @discardableResult
    public func publishPending(using client: MQTTClient) async throws -> [String] {
        let turn = try await PublishingTurn.take(in: workspace)
        defer { turn.end() }
        return try await publish(using: client)
    }

    /// Publishes all pending states over `client`; the caller holds the turn.
    private func publish(using client: MQTTClient) async throws -> [String] {
        let rows = try workspace.database.read { db in
            try db.rows("SELECT deviceId, revision, envelope FROM desiredState WHERE publishedRevision < revision ORDER BY deviceId")
        }
        guard !rows.isEmpty else { return [] }
        let broker = try workspace.config().broker
        let states = rows.map { row in (deviceId: row["deviceId"] as String, revision: row["revision"] as Int, envelope: row["envelope"] as Data) }
        var published: [(deviceId: String, revision: Int)] = []
        var failure: (any Error)?
        await withTaskGroup(of: (String, Int, (any Error)?).self) { group in
            var next = states.makeIterator()
            func add() -> Bool {
                guard let state = next.next() else { return false }
                group.addTask {
                    do {
                        try await client.publish(Topics.desired(state.deviceId), payload: state.envelope, qos: .atLeastOnce, retain: true)
                        return (state.deviceId, state.revision, nil)
                    } catch {
                        return (state.deviceId, state.revision, error)
                    }
                }
                return true
            }
            for _ in 0..<Self.publishesInFlight where !add() { break }
            while let (deviceId, revision, error) = await group.next() {
                if let error {
                    failure = failure ?? error
                } else {
                    published.append((deviceId, revision))
                }
                if failure == nil { _ = add() }
            }
        }
        let acknowledged = published
        try await workspace.database.write { db in
            for state in acknowledged {
                try db.execute(
                    "UPDATE desiredState SET publishedRevision = ? WHERE deviceId = ? AND publishedRevision < ?",
                    [state.revision, state.deviceId, state.revision])
            }
        }
        if let failure {
            throw PublishError.brokerUnavailable(broker, reason: "\(failure)", pending: states.count - published.count)
        }
        return published.map(\.deviceId).sorted()
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
