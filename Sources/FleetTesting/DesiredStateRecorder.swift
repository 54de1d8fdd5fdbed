import FleetCore
import Foundation
import Logging
import Synchronization

/// An independent subscriber to every device's desired-state topic: records the states
/// the broker delivered to each device, verified with the hub's key, in the order they
/// arrived, so a test can prove that a device never received a version, or an older
/// revision after a newer one.
public final class DesiredStateRecorder: Sendable {
    private let client: MQTTClient
    private let received = Received()

    private final class Received: Sendable {
        let states = Mutex<[String: [DesiredState]]>([:])
    }

    public init(brokerPort: Int, hubKey: HubPublicKey) async throws {
        var logger = Logger(label: "test.desired-state-recorder")
        logger.logLevel = .critical
        client = try MQTTClient(MQTTConfiguration(
            host: "127.0.0.1", port: brokerPort, clientId: "recorder-\(UUID().uuidString.prefix(8))",
            connectTimeout: .seconds(5), acknowledgementTimeout: .seconds(5), logger: logger))
        try await client.connect()
        try await client.subscribe(Topics.desired("+")) { [received] message in
            let id = String(message.topic.split(separator: "/")[3])
            guard let state = try? hubKey.open(message.payload, for: id) else { return }
            received.states.withLock { $0[id, default: []].append(state) }
        }
    }

    /// The devices that were ever sent a state running `digest`.
    public func devices(thatReceived digest: ContentDigest) -> [String] {
        received.states.withLock { states in
            states.filter { $0.value.contains { $0.modules.contains { $0.bundle.digest == digest } } }.map(\.key).sorted()
        }
    }

    /// The states delivered to `deviceId`, oldest first.
    public func states(of deviceId: String) -> [DesiredState] {
        received.states.withLock { $0[deviceId] ?? [] }
    }

    public func stop() { client.disconnect() }
}
