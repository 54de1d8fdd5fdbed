import Foundation

/// The JSON error body of the local API (DESIGN §7): `{"error": "...", "module": "..."}`,
/// plus the exception's `type` when `run` raised.
struct ScoringErrorBody: Encodable {
    var error: String
    var module: String
    var type: String?

    init(error: String, module: String, type: String? = nil) {
        self.error = error
        self.module = module
        self.type = type
    }

    init(_ failure: ScoringError) {
        switch failure {
        case .runRaised(let module, let type, let message):
            self.init(error: "\(type): \(message)", module: module, type: type)
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
