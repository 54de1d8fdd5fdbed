import FleetCore
import Foundation

/// Which devices a deployment targets, as a condition over device tags.
///
/// Grammar (keywords are case-insensitive):
///
///     target  := "*" | clause ("AND" clause)*
///     clause  := key "=" value | key "!=" value | key "in" "(" values ")" | key "not in" "(" values ")"
///     values  := value ("," value)*
///     key     := letters, digits, ".", "_", "-"
///     value   := a bare word (letters, digits, ".", "_", "-", ":", "/", "@", "+") or a quoted string
///
/// `*` matches every device; an empty target matches none. `k != v` and `k not in (…)`
/// also match devices that have no tag `k`.
public struct TargetExpression: Equatable, Sendable, CustomStringConvertible {
    public enum Clause: Equatable, Sendable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, [String])
        case notIn(String, [String])

        func matches(_ tags: [String: String]) -> Bool {
            switch self {
            case .equals(let key, let value): tags[key] == value
            case .notEquals(let key, let value): tags[key] != value
            case .isIn(let key, let values): tags[key].map(values.contains) ?? false
            case .notIn(let key, let values): !(tags[key].map(values.contains) ?? false)
            }
        }
    }

    /// The conditions that must all hold; empty matches no device unless `matchesAll`.
    public let clauses: [Clause]
    /// True for the target `*`.
    public let matchesAll: Bool
    public let description: String

    public init(parsing text: String) throws {
        description = text
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed == "*" {
            clauses = []
            matchesAll = true
            return
        }
        matchesAll = false
        var parser = TargetParser(tokens: try TargetLexer.tokens(of: text, expression: text), expression: text)
        clauses = try parser.parse()
    }

    public func matches(_ tags: [String: String]) -> Bool {
        matchesAll || (!clauses.isEmpty && clauses.allSatisfy { $0.matches(tags) })
    }
}

/// Why a target expression could not be read.
public struct TargetSyntaxError: Error, Equatable, CustomStringConvertible {
    public var expression: String
    public var problem: String

    public var description: String {
        "target '\(expression)': \(problem); expected e.g. site=plant-1 AND tier in (edge, gateway) AND model!=old"
    }
}

enum TargetToken: Equatable {
    case word(String)
    case quoted(String)
    case equals, notEquals, open, close, comma
}

enum TargetLexer {
    static func tokens(of text: String, expression: String) throws -> [TargetToken] {
        var tokens: [TargetToken] = []
        var index = text.startIndex
        func isWordCharacter(_ c: Character) -> Bool {
            c.isLetter || c.isNumber || ".-_:/@+".contains(c)
        }
        while index < text.endIndex {
            let c = text[index]
            if c.isWhitespace {
                index = text.index(after: index)
            } else if c == "=" {
                tokens.append(.equals)
                index = text.index(after: index)
                if index < text.endIndex, text[index] == "=" { index = text.index(after: index) }
            } else if c == "!" {
                let next = text.index(after: index)
                guard next < text.endIndex, text[next] == "=" else {
                    throw TargetSyntaxError(expression: expression, problem: "'!' must be followed by '='")
                }
                tokens.append(.notEquals)
                index = text.index(after: next)
            } else if c == "(" {
                tokens.append(.open)
                index = text.index(after: index)
            } else if c == ")" {
                tokens.append(.close)
                index = text.index(after: index)
            } else if c == "," {
                tokens.append(.comma)
                index = text.index(after: index)
            } else if c == "'" || c == "\"" {
                let start = text.index(after: index)
                guard let end = text[start...].firstIndex(of: c) else {
                    throw TargetSyntaxError(expression: expression, problem: "unterminated quoted value")
                }
                tokens.append(.quoted(String(text[start..<end])))
                index = text.index(after: end)
            } else if isWordCharacter(c) {
                let start = index
                while index < text.endIndex, isWordCharacter(text[index]) { index = text.index(after: index) }
                tokens.append(.word(String(text[start..<index])))
            } else {
                throw TargetSyntaxError(expression: expression, problem: "unexpected character '\(c)'")
            }
        }
        return tokens
    }
}

struct TargetParser {
    var tokens: [TargetToken]
    var expression: String
    var position = 0

    init(tokens: [TargetToken], expression: String) {
        self.tokens = tokens
        self.expression = expression
    }

    mutating func parse() throws -> [TargetExpression.Clause] {
        var clauses: [TargetExpression.Clause] = []
        guard !tokens.isEmpty else { return clauses }
        clauses.append(try clause())
        while position < tokens.count {
            guard case .word(let word) = next(), word.lowercased() == "and" else {
                throw failure("expected AND between conditions")
            }
            clauses.append(try clause())
        }
        return clauses
    }

    private mutating func clause() throws -> TargetExpression.Clause {
        guard case .word(let key) = next(), FleetName.isValid(key) else {
            throw failure("expected a tag name")
        }
        switch next() {
        case .equals: return .equals(key, try value())
        case .notEquals: return .notEquals(key, try value())
        case .word(let word) where word.lowercased() == "in": return .isIn(key, try list())
        case .word(let word) where word.lowercased() == "not":
            guard case .word(let inWord) = next(), inWord.lowercased() == "in" else {
                throw failure("expected 'in' after 'not'")
            }
            return .notIn(key, try list())
        default: throw failure("expected =, !=, in or not in after '\(key)'")
        }
    }

    private mutating func value() throws -> String {
        switch next() {
        case .word(let word): return word
        case .quoted(let text): return text
        default: throw failure("expected a value")
        }
    }

    private mutating func list() throws -> [String] {
        guard next() == .open else { throw failure("expected '(' after in") }
        var values = [try value()]
        while true {
            switch next() {
            case .comma: values.append(try value())
            case .close: return values
            default: throw failure("expected ',' or ')' in the list of values")
            }
        }
    }

    private mutating func next() -> TargetToken? {
        guard position < tokens.count else { return nil }
        defer { position += 1 }
        return tokens[position]
    }

    private func failure(_ problem: String) -> TargetSyntaxError {
        TargetSyntaxError(expression: expression, problem: problem)
    }
}
