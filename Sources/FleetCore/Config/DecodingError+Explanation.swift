extension DecodingError {
    /// What is wrong, in the terms of the file that was read: `missing key
    /// 'hub.publicKey'`, `'broker.url' is not a string`. The default description is a
    /// dump of coding-path structs.
    public var explanation: String {
        switch self {
        case .keyNotFound(let key, let context):
            "missing key '\(Self.path(context.codingPath + [key]))' (a truncated or hand-edited file?)"
        case .valueNotFound(let type, let context):
            "'\(Self.path(context.codingPath))' has no value; expected \(Self.name(of: type))"
        case .typeMismatch(let type, let context):
            context.codingPath.isEmpty
                ? "the file is not a mapping of keys to values (is it empty?)"
                : "'\(Self.path(context.codingPath))' is not \(Self.name(of: type))"
        case .dataCorrupted(let context):
            context.codingPath.isEmpty
                ? context.debugDescription : "'\(Self.path(context.codingPath))': \(context.debugDescription)"
        @unknown default:
            "\(self)"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int32.Type, is Int64.Type: "a whole number"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: "a \(type)"
        }
    }
}
