import Foundation
import Yams

/// Everything a device needs to join the fleet, in one YAML file that the hub writes
/// (`fleethub device add … --out gw-001.yaml`) and the runtime reads
/// (`edge-runtime run --config gw-001.yaml`). It holds credentials: keep it 0600.
public struct DeviceConfig: Codable, Equatable, Sendable {
    public var deviceId: String
    public var broker: BrokerSettings
    public var hub: HubSettings
    /// Where the runtime keeps its state database, bundle cache, modules and logs.
    public var dataDir: String?
    /// Seconds between two periodic health reports.
    public var reportIntervalSeconds: Int?
    /// Where the local inference API listens; 127.0.0.1:8765 when absent.
    public var localAPI: LocalAPISettings?
    /// Where telemetry is uploaded; kept in the buffer only when absent.
    public var storage: StorageSettings?
    /// Telemetry buffer limits and the metric interval.
    public var telemetry: TelemetryBufferSettings?
    /// Disk (MB) the bundles and Python environments of modules no longer deployed may
    /// keep, least recently used evicted first; `defaultCacheBudgetMB` when absent, 0 keeps none.
    public var cacheBudgetMB: Int?
    /// Timeouts of the venv and pip commands that build Python environments.
    public var environments: EnvironmentSettings?

    /// 1 GB: a few models and their environments.
    public static let defaultCacheBudgetMB = 1024

    public init(
        deviceId: String, broker: BrokerSettings, hub: HubSettings, dataDir: String? = nil,
        reportIntervalSeconds: Int? = nil, localAPI: LocalAPISettings? = nil, storage: StorageSettings? = nil,
        telemetry: TelemetryBufferSettings? = nil, cacheBudgetMB: Int? = nil, environments: EnvironmentSettings? = nil
    ) {
        self.deviceId = deviceId
        self.broker = broker
        self.hub = hub
        self.dataDir = dataDir
        self.reportIntervalSeconds = reportIntervalSeconds
        self.localAPI = localAPI
        self.storage = storage
        self.telemetry = telemetry
        self.cacheBudgetMB = cacheBudgetMB
        self.environments = environments
    }

    /// Reads and checks a config file; the error names the file and what is wrong.
    public static func load(from path: String) throws -> DeviceConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError.unreadable(path: path, reason: "\(error.localizedDescription)")
        }
        let config: DeviceConfig
        do {
            config = try YAMLDecoder().decode(DeviceConfig.self, from: text)
        } catch let error as DecodingError {
            throw ConfigError.invalid(path: path, reason: error.explanation)
        } catch {
            throw ConfigError.invalid(path: path, reason: "\(error)")
        }
        do {
            try FleetName.check(config.deviceId, as: .deviceId)
        } catch {
            throw ConfigError.invalid(path: path, reason: "deviceId: \(error)")
        }
        _ = try BrokerAddress(config.broker.url)
        if let budget = config.cacheBudgetMB, budget < 0 {
            throw ConfigError.invalid(path: path, reason: "cacheBudgetMB: \(budget) is negative; give the megabytes to keep (0 keeps no unused bundle)")
        }
        for (key, seconds) in [
            ("venvTimeoutSeconds", config.environments?.venvTimeoutSeconds), ("pipTimeoutSeconds", config.environments?.pipTimeoutSeconds),
        ] {
            if let seconds, seconds <= 0 {
                throw ConfigError.invalid(path: path, reason: "environments.\(key): \(seconds) is not positive; give the seconds the command may take")
            }
        }
        return config
    }

    /// Writes the config as YAML, readable and writable by its owner only.
    public func save(to path: String) throws {
        let text = try YAMLEncoder().encode(self)
        try writeSecretFile(Data(text.utf8), to: path)
    }
}

/// How a device reaches the broker.
public struct BrokerSettings: Codable, Equatable, Sendable {
    /// `mqtt://host:port`, or `mqtts://host:port` for TLS.
    public var url: String
    public var username: String?
    public var password: String?
    /// CA certificate that signed the broker's certificate (TLS).
    public var caFile: String?
    /// The device's client certificate and key (TLS with client certificates).
    public var certFile: String?
    public var keyFile: String?
    /// True allows a plain `mqtt://` URL (a test setup); without it the runtime must refuse one.
    public var insecure: Bool?

    public init(
        url: String, username: String? = nil, password: String? = nil, caFile: String? = nil,
        certFile: String? = nil, keyFile: String? = nil, insecure: Bool? = nil
    ) {
        self.url = url
        self.username = username
        self.password = password
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.insecure = insecure
    }
}

/// What a device knows about its hub.
public struct HubSettings: Codable, Equatable, Sendable {
    /// Base64 of the hub's Ed25519 public key: the only signer of desired states this device trusts.
    public var publicKey: String
    /// Where the device downloads bundles from, e.g. `https://hub.example:8080`.
    public var bundleBaseURL: String
    /// The device's secret for bundle downloads, sent as `Authorization: Bearer <token>`.
    public var token: String?
    /// The only CA whose certificates the device accepts from the hub's HTTPS (the hub's
    /// own CA, or the operator's); the system's trust store when absent.
    public var caFile: String?

    public init(publicKey: String, bundleBaseURL: String, token: String? = nil, caFile: String? = nil) {
        self.publicKey = publicKey
        self.bundleBaseURL = bundleBaseURL
        self.token = token
        self.caFile = caFile
    }
}

/// Why a config file could not be used.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(path: String, reason: String)
    case badBrokerURL(String)
    case badLocalAPIAddress(String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read config file \(path): \(reason)"
        case .invalid(let path, let reason): "config file \(path) is invalid: \(reason)"
        case .badBrokerURL(let url):
            "broker URL '\(url)' is not of the form mqtt://host:port or mqtts://host:port"
        case .badLocalAPIAddress(let address):
            "local API address '\(address)' is not of the form HOST:PORT, e.g. 127.0.0.1:8765"
        }
    }
}

/// A parsed broker URL.
public struct BrokerAddress: Equatable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var tls: Bool

    public init(host: String, port: Int, tls: Bool) {
        self.host = host
        self.port = port
        self.tls = tls
    }

    /// Parses `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (default 8883).
    public init(_ url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            let host = components.host, !host.isEmpty, components.path.isEmpty || components.path == "/"
        else { throw ConfigError.badBrokerURL(url) }
        switch scheme {
        case "mqtt": tls = false
        case "mqtts": tls = true
        default: throw ConfigError.badBrokerURL(url)
        }
        self.host = host
        port = components.port ?? (tls ? 8883 : 1883)
    }

    public var description: String { "\(tls ? "mqtts" : "mqtt")://\(host):\(port)" }
}
