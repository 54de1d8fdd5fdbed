import Foundation

/// The JSON error body of the local API (docs/contract.md): `{"error": "...", "module": "...",
/// "message": "..."}`, plus the exception's `type` when `run` raised. `message` is what
/// `azmlinfsrv` answers in its `{"message": ...}` body for the same failure, word for word,
/// so a client written for Azure ML reads it; `error` is this runtime's fuller account.
struct ScoringErrorBody: Encodable {
    var error: String
    var module: String
    var type: String?
    var message: String

    init(error: String, module: String, type: String? = nil, message: String? = nil) {
        self.error = error
        self.module = module
        self.type = type
        self.message = message ?? error
    }

    init(_ failure: ScoringError) {
        switch failure {
        case .runRaised(let module, let type, let message):
            self.init(
                error: "\(type): \(message)", module: module, type: type,
                message: "An unexpected error occurred in scoring script. Check the logs for more info.")
        case .undecodableBody(let module, _):
            self.init(
                error: failure.description, module: module,
                message: "An unexpected internal error occurred. Check the logs for more info.")
        case .badRequest(let module, let reason), .unsupportedMediaType(let module, let reason):
            self.init(error: failure.description, module: module, message: reason)
        case .timedOut(let module, let after):
            let milliseconds = after.components.seconds * 1000 + after.components.attoseconds / 1_000_000_000_000_000
            self.init(error: failure.description, module: module, message: "Scoring timeout after \(milliseconds) ms")
        default:
            self.init(error: failure.description, module: failure.module)
        }
    }

    var json: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array((try? encoder.encode(self)) ?? Data(#"{"error":"unencodable error"}"#.utf8))
    }
}
