import Foundation
import Logging

/// MQTT delivery guarantee of a publish or subscription.
public enum MQTTQoS: Int32, Sendable, Codable {
    /// Fire and forget.
    case atMostOnce = 0
    /// Delivered at least once: a publish returns only after the broker acknowledged it.
    case atLeastOnce = 1
}

/// A message received on a subscription.
public struct MQTTMessage: Sendable, Equatable {
    public var topic: String
    public var payload: Data
    public var qos: MQTTQoS
    /// True when the broker delivered a stored retained message, e.g. on subscribe.
    public var retained: Bool

    public init(topic: String, payload: Data, qos: MQTTQoS, retained: Bool) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retained = retained
    }

    /// The payload as UTF-8 text.
    public var text: String { String(decoding: payload, as: UTF8.self) }
}

/// The message the broker publishes on a client's behalf when the client vanishes
/// without a clean disconnect (network cut, crash, `kill -9`).
public struct LastWill: Sendable {
    public var topic: String
    public var payload: Data
    public var qos: MQTTQoS
    public var retain: Bool

    public init(topic: String, payload: Data, qos: MQTTQoS = .atLeastOnce, retain: Bool = true) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }
}

/// TLS settings for a broker connection.
public struct MQTTTLS: Sendable {
    /// CA certificate (PEM) that signed the broker's certificate.
    public var caFile: String
    /// Client certificate and key (PEM), for brokers that require one.
    public var certFile: String?
    public var keyFile: String?

    public init(caFile: String, certFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }
}

/// How an `MQTTClient` connects, and how it behaves when the connection drops.
public struct MQTTConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var clientId: String
    public var username: String?
    public var password: String?
    public var tls: MQTTTLS?
    /// When false, the broker keeps the client's subscriptions and queued QoS 1
    /// messages while it is away.
    public var cleanSession: Bool
    /// Seconds between keep-alive pings; the broker drops the client (and publishes
    /// its last will) after 1.5 times this without traffic.
    public var keepAliveSeconds: Int
    public var will: LastWill?
    /// Delays between reconnect attempts after a lost connection. The default is
    /// back within 5 s of the broker's return, with jitter so a fleet does not
    /// reconnect in step.
    public var reconnectBackoff: BackoffSchedule
    /// How long `connect()`, and each reconnect attempt, waits for the broker's answer.
    public var connectTimeout: Duration
    /// How long a QoS 1 publish or a subscribe waits for the broker's acknowledgement.
    public var acknowledgementTimeout: Duration
    /// How many QoS 1 publishes are on the wire before their PUBACK (1…65535); later
    /// ones wait in the client until an acknowledgement frees a place. libmosquitto's
    /// default of 20 keeps a device gentle; a publisher fanning out to thousands of
    /// devices raises it, or a wave costs one round trip per 20 devices.
    public var publishesInFlight: Int
    public var logger: Logger

    public init(
        host: String, port: Int, clientId: String, username: String? = nil, password: String? = nil,
        tls: MQTTTLS? = nil, cleanSession: Bool = true, keepAliveSeconds: Int = 30, will: LastWill? = nil,
        reconnectBackoff: BackoffSchedule = .brokerReconnect,
        connectTimeout: Duration = .seconds(10), acknowledgementTimeout: Duration = .seconds(30),
        publishesInFlight: Int = 20, logger: Logger = Logger(label: "fleet.mqtt")
    ) {
        self.host = host
        self.port = port
        self.clientId = clientId
        self.username = username
        self.password = password
        self.tls = tls
        self.cleanSession = cleanSession
        self.keepAliveSeconds = keepAliveSeconds
        self.will = will
        self.reconnectBackoff = reconnectBackoff
        self.connectTimeout = connectTimeout
        self.acknowledgementTimeout = acknowledgementTimeout
        self.publishesInFlight = publishesInFlight
        self.logger = logger
    }
}

/// A change of an `MQTTClient`'s connection, for code that reacts to it (e.g. to
/// republish a retained "online" state after a reconnect).
public enum MQTTConnectionEvent: Sendable, Equatable {
    case connected
    case disconnected(reason: String)
}

/// Why the broker refused a connection (CONNACK return codes of MQTT 3.1.1).
public enum MQTTRefusal: Int32, Sendable, Equatable, CustomStringConvertible {
    case unacceptableProtocolVersion = 1
    case identifierRejected = 2
    case serverUnavailable = 3
    case badUsernameOrPassword = 4
    case notAuthorised = 5

    public var description: String {
        switch self {
        case .unacceptableProtocolVersion: "unacceptable protocol version"
        case .identifierRejected: "client identifier rejected"
        case .serverUnavailable: "server unavailable"
        case .badUsernameOrPassword: "bad user name or password"
        case .notAuthorised: "not authorised"
        }
    }
}

/// What went wrong talking to the broker, with what was being attempted.
public enum MQTTError: Error, Equatable, CustomStringConvertible {
    /// The broker answered and refused the connection.
    case connectionRefused(MQTTRefusal, broker: String)
    /// No MQTT connection could be made: the reason names the network or TLS failure.
    case unreachable(broker: String, reason: String)
    /// The operation needs a connection and there is none.
    case notConnected(operation: String)
    /// The broker did not answer in time.
    case timedOut(operation: String)
    /// The broker refused a subscription (typically its ACL).
    case subscriptionRefused(filter: String)
    case invalidTopic(String)
    case invalidFilter(String)
    /// The client was disconnected while the operation waited.
    case disconnected(operation: String)
    /// The settings could not be applied (e.g. an unreadable TLS file).
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .connectionRefused(let refusal, let broker): "connection refused by \(broker): \(refusal)"
        case .unreachable(let broker, let reason): "cannot connect to \(broker): \(reason)"
        case .notConnected(let operation): "cannot \(operation): not connected to the broker"
        case .timedOut(let operation): "the broker did not answer in time to \(operation)"
        case .subscriptionRefused(let filter): "the broker refused the subscription to '\(filter)' (check its ACL)"
        case .invalidTopic(let topic): "'\(topic)' is not a valid topic to publish to (no '+' or '#', not empty)"
        case .invalidFilter(let filter): "'\(filter)' is not a valid subscription filter"
        case .disconnected(let operation): "disconnected before the broker confirmed: \(operation)"
        case .invalidConfiguration(let why): "invalid MQTT settings: \(why)"
        }
    }
}
