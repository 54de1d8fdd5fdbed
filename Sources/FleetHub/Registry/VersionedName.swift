import FleetCore
import Foundation

/// A registry reference as users type it: `iris:1`, or `iris` for the latest version.
public struct VersionedName: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var name: String
    /// Nil means "the latest version".
    public var version: Int?

    public init(name: String, version: Int?) {
        self.name = name
        self.version = version
    }

    /// Parses `name` or `name:version`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let name = parts.first.map(String.init), FleetName.isValid(name) else {
            throw RegistryError.invalidReference(text)
        }
        self.name = name
        if parts.count == 2 {
            guard let version = Int(parts[1]), version > 0 else { throw RegistryError.invalidReference(text) }
            self.version = version
        } else {
            version = nil
        }
    }

    /// Parses `name:version`, refusing a missing version.
    public init(parsingExact text: String) throws {
        try self.init(parsing: text)
        guard version != nil else { throw RegistryError.invalidReference(text) }
    }

    public var description: String { version.map { "\(name):\($0)" } ?? name }
}

/// Parses `key=value` tags as typed on the command line.
public enum TagParser {
    public static func parse(_ texts: [String]) throws -> [String: String] {
        var tags: [String: String] = [:]
        for text in texts {
            guard let equals = text.firstIndex(of: "=") else { throw RegistryError.invalidTag(text) }
            let key = String(text[..<equals]).trimmingCharacters(in: .whitespaces)
            let value = String(text[text.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            guard FleetName.isValid(key), !value.isEmpty else { throw RegistryError.invalidTag(text) }
            tags[key] = value
        }
        return tags
    }
}
