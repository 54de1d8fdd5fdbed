/// Why a scoring request or a scoring module failed. Each case maps to the local
/// API's status code (docs/contract.md) through `httpStatus`.
public enum ScoringError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The body is not something `run` can take, refused as azmlinfsrv refuses it (not UTF-8
    /// for `run(raw_data)`; not a JSON object, or a parameter missing, for a `run` decorated
    /// with `@input_schema`). `reason` is azmlinfsrv's message.
    case badRequest(module: String, reason: String)
    /// `run` is decorated with `@input_schema` and the request's `Content-Type` is not JSON.
    case unsupportedMediaType(module: String, reason: String)
    /// `run` is decorated with `@input_schema` and the body is not text in any encoding JSON
    /// allows; azmlinfsrv fails on it with a 500, and so does this runtime.
    case undecodableBody(module: String, reason: String)
    /// `run` raised; the worker stays up.
    case runRaised(module: String, type: String, message: String)
    /// The module has not finished `init()` or is stopped.
    case notReady(module: String)
    /// The worker died while scoring, or every worker is being replaced.
    case workerRestarting(module: String, detail: String)
    /// Every worker stayed busy for longer than the request timeout.
    case busy(module: String, waited: Duration)
    /// `run` took longer than the request timeout; its worker was killed and is replaced.
    case timedOut(module: String, after: Duration)
    /// A worker could not start: the Python did not run, or `init()` raised or hung.
    case startFailed(module: String, reason: String)
    /// The module failed (e.g. its `init()` raised) and is in its restart policy's back-off
    /// or stopped for good; `lastError` says why it failed.
    case moduleFailed(module: String, lastError: String)

    /// The local API's status code for this failure.
    public var httpStatus: Int {
        switch self {
        case .badRequest: 400
        case .unsupportedMediaType: 415
        case .runRaised, .undecodableBody: 500
        case .notReady, .workerRestarting, .busy, .startFailed, .moduleFailed: 503
        case .timedOut: 504
        }
    }

    public var module: String {
        switch self {
        case .badRequest(let module, _), .unsupportedMediaType(let module, _), .undecodableBody(let module, _),
            .runRaised(let module, _, _),
            .notReady(let module), .workerRestarting(let module, _), .busy(let module, _), .timedOut(let module, _),
            .startFailed(let module, _), .moduleFailed(let module, _):
            module
        }
    }

    public var description: String {
        switch self {
        case .badRequest(let module, let reason):
            "bad request body for module \(module): \(reason); send the JSON your score.py's run() expects"
        case .unsupportedMediaType(let module, let reason):
            "module \(module) takes JSON only: \(reason); send the header Content-Type: application/json"
        case .undecodableBody(let module, let reason):
            "module \(module) could not read the body as JSON: \(reason); send UTF-8 JSON"
        case .runRaised(_, let type, let message):
            "run() raised \(type): \(message)"
        case .notReady(let module):
            "module \(module) is not ready: its workers have not finished init(); retry shortly"
        case .workerRestarting(let module, let detail):
            "module \(module) is replacing a crashed worker (\(detail)); retry shortly"
        case .busy(let module, let waited):
            "every worker of module \(module) stayed busy for \(waited); retry, or raise the module's workers"
        case .timedOut(let module, let after):
            "run() of module \(module) took longer than \(after); the worker was killed and is being replaced"
        case .startFailed(let module, let reason):
            "module \(module) could not start its scoring workers: \(reason)"
        case .moduleFailed(let module, let lastError):
            "module \(module) failed and is not serving: \(lastError); "
                + "it is restarted as its restart policy says (see `edge-runtime status` and the module's log)"
        }
    }
}
