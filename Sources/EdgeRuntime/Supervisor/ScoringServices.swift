import Foundation

/// What the supervisor needs to serve `python-scoring` modules: the local API's module
/// table, the inference telemetry recorder, the request timeout, and the URL
/// `edge_telemetry.emit` posts custom records to.
public struct ScoringServices: Sendable {
    public var modules: LocalModules
    public var recorder: InferenceRecorder?
    /// The input summaries of modules with `telemetry.drift`; nil summarises nothing.
    public var drift: InputDrift?
    public var requestTimeout: Duration
    /// The local API's base URL (e.g. `http://127.0.0.1:8765`), given to the workers as
    /// `EDGE_TELEMETRY_URL`.
    public var localAPIURL: String?
    /// How long a ready scoring module may have a worker down (crashed and failing to
    /// restart) before it counts as unhealthy and is restarted by its restart policy.
    public var unhealthyAfter: Duration

    public init(
        modules: LocalModules = LocalModules(), recorder: InferenceRecorder? = nil, drift: InputDrift? = nil,
        requestTimeout: Duration = .seconds(30), localAPIURL: String? = nil, unhealthyAfter: Duration = .seconds(30)
    ) {
        self.modules = modules
        self.recorder = recorder
        self.drift = drift
        self.requestTimeout = requestTimeout
        self.localAPIURL = localAPIURL
        self.unhealthyAfter = unhealthyAfter
    }
}
