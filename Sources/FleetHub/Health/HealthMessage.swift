import FleetCore
import Foundation

/// A device message the hub accepted from the `reported` or `connection` topic.
public enum HealthMessage: Equatable, Sendable {
    case report(HealthReport)
    case connection(deviceId: String, ConnectionState)

    public var deviceId: String {
        switch self {
        case .report(let report): report.deviceId
        case .connection(let deviceId, _): deviceId
        }
    }

    /// When the device sent it, by its own clock, if it says.
    public var sentAt: Date? {
        switch self {
        case .report(let report): report.at
        case .connection(_, let state): state.at
        }
    }
}

/// Why a message on a device topic was not stored. Each is counted, logged and
/// shown by `/metrics`; the hub carries on.
public enum HealthRejection: Error, Equatable, Sendable, CustomStringConvertible {
    /// The body is not the JSON of docs/contract.md (or of a connection state).
    case malformed(topic: String, reason: String)
    /// The body is larger than the hub accepts.
    case oversized(topic: String, bytes: Int, limit: Int)
    /// The topic names a device the hub has not registered.
    case unknownDevice(topic: String, deviceId: String)
    /// The report claims another device's id than its topic.
    case deviceMismatch(topic: String, claimed: String)
    /// Not a `fleet/v1/devices/{id}/reported|connection` topic.
    case unexpectedTopic(String)

    /// A short stable name, for counters and metric labels.
    public var reason: String {
        switch self {
        case .malformed: "malformed"
        case .oversized: "oversized"
        case .unknownDevice: "unknown-device"
        case .deviceMismatch: "device-mismatch"
        case .unexpectedTopic: "unexpected-topic"
        }
    }

    public var topic: String {
        switch self {
        case .malformed(let topic, _), .oversized(let topic, _, _), .unknownDevice(let topic, _),
            .deviceMismatch(let topic, _), .unexpectedTopic(let topic):
            topic
        }
    }

    public var description: String {
        switch self {
        case .malformed(let topic, let reason):
            "rejected the message on '\(topic)': not a valid health report or connection state (\(reason)); the device's runtime must publish the JSON of docs/contract.md"
        case .oversized(let topic, let bytes, let limit):
            "rejected the message on '\(topic)': \(bytes) bytes is over the \(limit)-byte limit for health messages"
        case .unknownDevice(let topic, let deviceId):
            "rejected the message on '\(topic)': device '\(deviceId)' is not registered; `fleethub device add \(deviceId)` registers it"
        case .deviceMismatch(let topic, let claimed):
            "rejected the report on '\(topic)': it claims to be from device '\(claimed)'; a device may only report on its own topic"
        case .unexpectedTopic(let topic):
            "rejected a message on '\(topic)': not a fleet/v1/devices/{id}/reported or /connection topic"
        }
    }
}

/// Turns a raw MQTT message into a `HealthMessage`, or says why it is refused.
/// Pure: the set of registered devices is passed in.
public struct HealthMessageDecoder: Sendable {
    /// Reports are a few kB; anything much larger is a bug or an attack.
    public var maximumBytes: Int

    public init(maximumBytes: Int = 64 * 1024) {
        self.maximumBytes = maximumBytes
    }

    public func decode(_ message: MQTTMessage, isRegistered: (String) -> Bool) -> Result<HealthMessage, HealthRejection> {
        let topic = message.topic
        guard let deviceId = Topics.deviceId(inTopic: topic) else { return .failure(.unexpectedTopic(topic)) }
        let isReport = topic == Topics.reported(deviceId)
        guard isReport || topic == Topics.connection(deviceId) else { return .failure(.unexpectedTopic(topic)) }
        guard message.payload.count <= maximumBytes else {
            return .failure(.oversized(topic: topic, bytes: message.payload.count, limit: maximumBytes))
        }
        guard isRegistered(deviceId) else { return .failure(.unknownDevice(topic: topic, deviceId: deviceId)) }
        do {
            if isReport {
                let report = try FleetJSON.decode(HealthReport.self, from: message.payload)
                guard report.deviceId == deviceId else {
                    return .failure(.deviceMismatch(topic: topic, claimed: report.deviceId))
                }
                return .success(.report(report))
            }
            return .success(.connection(deviceId: deviceId, try FleetJSON.decode(ConnectionState.self, from: message.payload)))
        } catch {
            return .failure(.malformed(topic: topic, reason: Self.summary(of: error)))
        }
    }

    private static func summary(of error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted(let context):
            context.codingPath.isEmpty ? "not JSON" : "bad value at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: "\(error)"
        }
    }
}
