/// Where the device's local inference API listens (docs/contract.md), as `fleethub device add
/// --local-api HOST:PORT` writes it into the device config (`localAPI:`). Every field
/// is optional; the runtime fills in the defaults (127.0.0.1:8765).
public struct LocalAPISettings: Codable, Equatable, Sendable {
    /// Address to bind; `127.0.0.1` when absent, so only local processes can call it.
    public var host: String?
    /// TCP port; 8765 when absent.
    public var port: Int?
    /// Also serve the API on this Unix socket.
    public var socketPath: String?
    /// Largest request body accepted (1 MiB when absent).
    public var maxBodyBytes: Int?
    /// Longest a `run` call may take before its worker is replaced (30 when absent).
    public var requestTimeoutSeconds: Double?

    public static let defaultHost = "127.0.0.1"
    public static let defaultPort = 8765

    public init(
        host: String? = nil, port: Int? = nil, socketPath: String? = nil, maxBodyBytes: Int? = nil,
        requestTimeoutSeconds: Double? = nil
    ) {
        self.host = host
        self.port = port
        self.socketPath = socketPath
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeoutSeconds = requestTimeoutSeconds
    }

    /// Parses `HOST:PORT` (or `:PORT` for the default host), as given to `--local-api`.
    public init(address: String) throws {
        guard let parsed = ListenAddress(address) else { throw ConfigError.badLocalAPIAddress(address) }
        self.init(host: parsed.host.isEmpty ? nil : parsed.host, port: parsed.port)
    }
}

/// How much telemetry the device buffers while its storage is unreachable, and how often
/// it records runtime metrics (docs/contract.md), as the device config's `telemetry:` section.
/// Absent fields take the runtime's defaults.
public struct TelemetryBufferSettings: Codable, Equatable, Sendable {
    /// Most records kept; the oldest are dropped beyond it.
    public var maxRecords: Int?
    /// Most bytes of record payload kept.
    public var maxBytes: Int?
    /// Seconds a record may wait for upload before it is dropped as expired.
    public var ttlSeconds: Double?
    /// Seconds between two runtime metric records (cpu, memory, restarts, inference counts); 60 when absent.
    public var uploadIntervalSeconds: Double?

    public init(maxRecords: Int? = nil, maxBytes: Int? = nil, ttlSeconds: Double? = nil, uploadIntervalSeconds: Double? = nil) {
        self.maxRecords = maxRecords
        self.maxBytes = maxBytes
        self.ttlSeconds = ttlSeconds
        self.uploadIntervalSeconds = uploadIntervalSeconds
    }
}
