/// One finished scoring request, handed to the hook of `ScoringHost` so the
/// telemetry layer can record inputs, outputs and latency.
public struct InferenceEvent: Sendable {
    public var module: String
    /// The request body as `run(raw_data)` received it.
    public var input: String
    /// The answer's body (the JSON `run` returned, or the body of a response it returned),
    /// or the JSON error the caller got.
    public var output: String
    public var latency: Duration
    /// The HTTP status the caller got (200, 400, 415, 500, 503, 504, or the status of a
    /// response `run` returned).
    public var status: Int
    /// The `x-request-id` the caller got, when the request came through the local API.
    public var requestID: String?

    public init(module: String, input: String, output: String, latency: Duration, status: Int, requestID: String? = nil) {
        self.module = module
        self.input = input
        self.output = output
        self.latency = latency
        self.status = status
        self.requestID = requestID
    }
}
