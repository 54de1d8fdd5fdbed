/// Why a scoring request or a scoring module failed. Each case maps to the local
/// API's status code (DESIGN §7) through `httpStatus`.
public enum ScoringError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The body is not something `run(raw_data)` can take (empty or not UTF-8).
    case badRequest(module: String, reason: String)
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

    /// The local API's status code for this failure.
    public var httpStatus: Int {
        switch self {
        case .badRequest: 400
        case .runRaised: 500
        case .notReady, .workerRestarting, .busy, .startFailed: 503
        case .timedOut: 504
        }
    }

    public var module: String {
        switch self {
        case .badRequest(let module, _), .runRaised(let module, _, _), .notReady(let module),
            .workerRestarting(let module, _), .busy(let module, _), .timedOut(let module, _),
            .startFailed(let module, _):
            module
        }
    }

    public var description: String {
        switch self {
        case .badRequest(let module, let reason):
            "bad request body for module \(module): \(reason); send the JSON your score.py's run() expects"
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
        }
    }
}
