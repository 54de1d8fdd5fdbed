import FleetCore
import FleetSQL
import Foundation

/// The workspace's settings that an operator may change after `init`: where the
/// broker is, the base URL devices download bundles from, and the certificate the hub
/// answers HTTPS with when it is not the one its own CA issues.
public struct HubConfig: Codable, Equatable, Sendable {
    /// `mqtt://host:port` or `mqtts://host:port`, written into every device config.
    public var broker: String
    /// The hub's base URL as devices reach it, e.g. `https://hub.example:8080`.
    public var publicURL: String
    /// The hub's own broker login, when the broker requires one.
    public var brokerUsername: String?
    public var brokerPassword: String?
    /// True allows a plain `mqtt://` broker (a test setup); without it the hub refuses one.
    public var insecure: Bool?
    /// The folder `fleethub broker-config` last wrote the broker's files into; `serve`
    /// keeps the revocation list there from lapsing.
    public var brokerFolder: String?
    /// True allows an `http://` public URL (a test setup): tokens and bundles then cross
    /// the network in clear text.
    public var insecureHTTP: Bool?
    /// The operator's own certificate (PEM, with its chain) and key for `serve`'s HTTPS;
    /// without them the hub's CA issues one for the public URL's host.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// The CA devices trust for the operator's certificate; without it, their system's
    /// trust store.
    public var tlsCA: String?
    /// The PSI above which a feature's input drift raises an alert (`HealthPolicy`); nil
    /// is the default, 0.2.
    public var driftAlertPSI: Double?
    /// The hub's database: nil for the workspace's own SQLite file, or a
    /// `postgres://` URL that several hub instances share.
    public var database: String?

    public init(
        broker: String, publicURL: String, brokerUsername: String? = nil, brokerPassword: String? = nil,
        insecure: Bool? = nil, insecureHTTP: Bool? = nil, database: String? = nil
    ) {
        self.broker = broker
        self.publicURL = publicURL
        self.brokerUsername = brokerUsername
        self.brokerPassword = brokerPassword
        self.insecure = insecure
        self.insecureHTTP = insecureHTTP
        self.database = database
    }

    /// Whether plain MQTT was explicitly allowed.
    public var allowsPlainMQTT: Bool { insecure == true }

    /// Whether an `http://` public URL was explicitly allowed.
    public var allowsPlainHTTP: Bool { insecureHTTP == true }

    /// The settings `fleethub config set KEY VALUE` accepts.
    public enum Key: String, CaseIterable, Sendable {
        case broker
        case publicURL = "public-url"
        case brokerUsername = "broker-username"
        case brokerPassword = "broker-password"
        case insecure
        case insecureHTTP = "insecure-http"
        case tlsCertificate = "tls-cert"
        case tlsKey = "tls-key"
        case tlsCA = "tls-ca"
        case driftAlertPSI = "drift-alert-psi"
        case database
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
        case .insecureHTTP:
            guard let allowed = Bool(value) else {
                throw WorkspaceError.invalidSetting("insecure-http", value: value, expected: "true or false")
            }
            insecureHTTP = allowed ? true : nil
        case .tlsCertificate: tlsCertificate = try Self.checkedFile(value, key: key)
        case .tlsKey: tlsKey = try Self.checkedFile(value, key: key)
        case .tlsCA: tlsCA = try Self.checkedFile(value, key: key)
        case .driftAlertPSI:
            guard !value.isEmpty else {
                driftAlertPSI = nil
                break
            }
            guard let psi = Double(value), psi.isFinite, psi > 0 else {
                throw WorkspaceError.invalidSetting("drift-alert-psi", value: value, expected: "a PSI above 0, e.g. 0.2 (empty for the default)")
            }
            driftAlertPSI = psi
        case .database:
            if value.isEmpty {
                database = nil
            } else {
                _ = try SQLLocation(parsing: value)
                database = value
            }
        }
        try checkPublicURLScheme()
    }

    /// Refuses an `http://` public URL unless `insecure-http` allows it.
    public func checkPublicURLScheme() throws {
        if URLComponents(string: publicURL)?.scheme == "http", !allowsPlainHTTP {
            throw WorkspaceError.plainHTTPRefused(publicURL)
        }
    }

    /// The host of the public URL (a name or an IP address), which the hub's HTTPS
    /// certificate must name.
    public var publicHost: String {
        get throws {
            guard let host = URLComponents(string: try Self.checkedPublicURL(publicURL))?.host else {
                throw WorkspaceError.invalidSetting("public-url", value: publicURL, expected: "https://host:port")
            }
            // URLComponents keeps an IPv6 address's brackets.
            return host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        }
    }

    /// An absolute path to a readable file, or empty to clear the setting.
    static func checkedFile(_ value: String, key: Key) throws -> String? {
        guard !value.isEmpty else { return nil }
        let path = URL(fileURLWithPath: value).standardizedFileURL.path
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw WorkspaceError.invalidSetting(key.rawValue, value: value, expected: "a readable PEM file")
        }
        return path
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
            throw WorkspaceError.invalidSetting("public-url", value: value, expected: "https://host:port (http:// with insecure-http)")
        }
        return value.hasSuffix("/") ? String(value.dropLast()) : value
    }

    /// The URL a device downloads the bundle `digest` from.
    public func bundleURL(_ digest: ContentDigest) -> String { "\(publicURL)/v1/bundles/\(digest)" }
}
