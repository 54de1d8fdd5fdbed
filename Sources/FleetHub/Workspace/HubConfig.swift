import FleetCore
import Foundation

/// The workspace's settings that an operator may change after `init`: where the
/// broker is, and the base URL devices download bundles from.
public struct HubConfig: Codable, Equatable, Sendable {
    /// `mqtt://host:port` or `mqtts://host:port`, written into every device config.
    public var broker: String
    /// The hub's HTTP base URL as devices reach it, e.g. `http://hub.example:8080`.
    public var publicURL: String
    /// The hub's own broker login, when the broker requires one.
    public var brokerUsername: String?
    public var brokerPassword: String?
    /// True allows a plain `mqtt://` broker (a test setup); without it the hub refuses one.
    public var insecure: Bool?
    /// The folder `fleethub broker-config` last wrote the broker's files into; `serve`
    /// keeps the revocation list there from lapsing.
    public var brokerFolder: String?

    public init(
        broker: String, publicURL: String, brokerUsername: String? = nil, brokerPassword: String? = nil,
        insecure: Bool? = nil
    ) {
        self.broker = broker
        self.publicURL = publicURL
        self.brokerUsername = brokerUsername
        self.brokerPassword = brokerPassword
        self.insecure = insecure
    }

    /// Whether plain MQTT was explicitly allowed.
    public var allowsPlainMQTT: Bool { insecure == true }

    /// The settings `fleethub config set KEY VALUE` accepts.
    public enum Key: String, CaseIterable, Sendable {
        case broker
        case publicURL = "public-url"
        case brokerUsername = "broker-username"
        case brokerPassword = "broker-password"
        case insecure
    }

    /// Changes one setting after checking the value.
    public mutating func set(_ key: Key, to value: String) throws {
        switch key {
        case .broker:
            _ = try Self.checkedBroker(value)
            broker = value
        case .publicURL:
            publicURL = try Self.checkedPublicURL(value)
        case .brokerUsername: brokerUsername = value.isEmpty ? nil : value
        case .brokerPassword: brokerPassword = value.isEmpty ? nil : value
        case .insecure:
            guard let allowed = Bool(value) else {
                throw WorkspaceError.invalidSetting("insecure", value: value, expected: "true or false")
            }
            insecure = allowed ? true : nil
        }
    }

    static func checkedBroker(_ value: String) throws -> BrokerAddress {
        do {
            return try BrokerAddress(value)
        } catch {
            throw WorkspaceError.invalidSetting("broker", value: value, expected: "mqtt://host:port or mqtts://host:port")
        }
    }

    static func checkedPublicURL(_ value: String) throws -> String {
        guard let url = URLComponents(string: value), ["http", "https"].contains(url.scheme ?? ""),
            url.host?.isEmpty == false
        else {
            throw WorkspaceError.invalidSetting("public-url", value: value, expected: "http://host:port or https://host")
        }
        return value.hasSuffix("/") ? String(value.dropLast()) : value
    }

    /// The URL a device downloads the bundle `digest` from.
    public func bundleURL(_ digest: ContentDigest) -> String { "\(publicURL)/v1/bundles/\(digest)" }
}
