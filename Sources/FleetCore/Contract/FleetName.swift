/// The one naming rule for device ids and model, module and deployment names. Each
/// of them becomes a path component (a device's default data dir, a module's folder),
/// an MQTT topic level or a registry key, so a name is 1 to 128 ASCII letters,
/// digits, `.`, `_` and `-`, and starts with a letter or digit: never `.` or `..`
/// (which would climb out of a folder), a hidden file, an option (`-x`), a topic
/// wildcard or a colon (which separates `name:version` and the hub's own identity).
/// Every entry point (CLI, library, manifest parser, device config, the runtime's
/// desired-state gate) checks names with it.
public enum FleetName {
    /// What a name names, for the error message.
    public enum Kind: String, Sendable {
        case deviceId = "device id"
        case model = "model name"
        case module = "module name"
        case deployment = "deployment name"
    }

    /// The rule in words, as error messages and help texts print it.
    public static let rule = "1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"

    public static func isValid(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 128, isAlphanumeric(first) else {
            return false
        }
        return name.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "." || $0 == "_" || $0 == "-" }
    }

    /// Returns `name` if it follows the rule, else throws an error naming it and the rule.
    @discardableResult
    public static func check(_ name: String, as kind: Kind) throws(FleetNameError) -> String {
        guard isValid(name) else { throw FleetNameError.invalid(name, kind: kind) }
        return name
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
    }
}

/// A name that breaks `FleetName`'s rule.
public enum FleetNameError: Error, Equatable, CustomStringConvertible {
    case invalid(String, kind: FleetName.Kind)

    public var description: String {
        switch self {
        case .invalid(let name, let kind): "'\(name)' is not a valid \(kind.rawValue): use \(FleetName.rule)"
        }
    }
}
