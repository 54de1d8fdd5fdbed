import FleetCore
import FleetSQL
import Foundation

/// The workspace's settings that an operator may change after `init`: where the
/// broker is, the base URLs devices download bundles from, where the blobs live, and the
/// certificate the hub answers HTTPS with when it is not the one its own CA issues.
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
    /// The base URLs devices download bundles from, tried in order: every `serve`
    /// instance's, or one load balancer's; nil is the public URL alone.
    public var bundleURLs: [String]?
    /// `s3://BUCKET/PREFIX` when the blobs live in a bucket that every `serve` instance
    /// reads; nil keeps them in the workspace folder.
    public var blobs: String?
    /// The bucket's S3 endpoint, e.g. `http://127.0.0.1:8333`; AWS's regional one when nil.
    public var blobsEndpoint: String?
    /// The signing region; `us-east-1` when nil.
    public var blobsRegion: String?
    /// A file in the AWS shared-credentials format; nil reads the AWS environment
    /// (`AWS_ACCESS_KEY_ID`…, `~/.aws/credentials`).
    public var blobsCredentials: String?

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
        case bundleURLs = "bundle-urls"
        case blobs
        case blobsEndpoint = "blobs-endpoint"
        case blobsRegion = "blobs-region"
        case blobsCredentials = "blobs-credentials"

        /// The settings that say where the blobs live.
        public var isBlobSetting: Bool { [.blobs, .blobsEndpoint, .blobsRegion, .blobsCredentials].contains(self) }
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
        case .bundleURLs:
            bundleURLs = try value.isEmpty ? nil : value.split(separator: ",").map {
                try Self.checkedURL(String($0).trimmingCharacters(in: .whitespaces), key: key)
            }
        case .blobs: blobs = try Self.checkedBlobs(value)
        case .blobsEndpoint: blobsEndpoint = try value.isEmpty ? nil : Self.checkedURL(value, key: key)
        case .blobsRegion: blobsRegion = value.isEmpty ? nil : value
        case .blobsCredentials: blobsCredentials = try Self.checkedFile(value, key: key, expected: "a readable AWS credentials file")
        }
        try checkPublicURLScheme()
    }

    /// Refuses an `http://` public or bundle URL unless `insecure-http` allows it.
    public func checkPublicURLScheme() throws {
        for url in [publicURL] + (bundleURLs ?? []) where URLComponents(string: url)?.scheme == "http" && !allowsPlainHTTP {
            throw WorkspaceError.plainHTTPRefused(url)
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
    static func checkedFile(_ value: String, key: Key, expected: String = "a readable PEM file") throws -> String? {
        guard !value.isEmpty else { return nil }
        let path = URL(fileURLWithPath: value).standardizedFileURL.path
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw WorkspaceError.invalidSetting(key.rawValue, value: value, expected: expected)
        }
        return path
    }

    /// An `http(s)://host[:port]` URL, without a trailing slash.
    static func checkedURL(_ value: String, key: Key) throws -> String {
        guard let url = URLComponents(string: value), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false
        else {
            throw WorkspaceError.invalidSetting(key.rawValue, value: value, expected: "an http(s)://host:port URL")
        }
        return value.hasSuffix("/") ? String(value.dropLast()) : value
    }

    /// `s3://BUCKET[/PREFIX]`, or nil for the workspace folder (`local` or empty).
    static func checkedBlobs(_ value: String) throws -> String? {
        guard !value.isEmpty, value != "local" else { return nil }
        guard let url = URLComponents(string: value), url.scheme?.lowercased() == "s3", url.host?.isEmpty == false else {
            throw WorkspaceError.invalidSetting(
                "blobs", value: value, expected: "s3://BUCKET/PREFIX (a bucket on an S3 endpoint), or local for the workspace folder")
        }
        return value
    }

    /// The bucket settings `blobs` and its companions describe; nil for the workspace folder.
    public var blobStorage: StorageSettings? {
        blobs.map { StorageSettings(url: $0, endpoint: blobsEndpoint, region: blobsRegion, credentialsFile: blobsCredentials) }
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

    /// The URLs a device downloads the bundle `digest` from, in the order it tries them.
    public func downloadURLs(for digest: ContentDigest) -> [String] {
        (bundleURLs ?? [publicURL]).map { "\($0)/v1/bundles/\(digest)" }
    }
}
