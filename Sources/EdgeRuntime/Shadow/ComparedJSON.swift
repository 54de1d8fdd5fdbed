import Foundation

/// A scoring answer as the shadow comparison reads it. Like `JSONValue`, except that
/// a number written as an integer — no fraction, no exponent (`2`, `-7`) — is a
/// *label* (a class id, a count), compared for equality like a string, while any other
/// number (`0.93`, `2.0`, `1e-3`, and Python's `NaN` and `Infinity`) is a measurement
/// whose difference is recorded. Python's `json.dumps` writes every `int` without and
/// every `float` with a fraction, so this follows what `score.py` returned. `JSONValue`
/// cannot tell `2` from `2.0`, hence this small reader of the answer's bytes.
enum ComparedJSON: Equatable, Sendable {
    case null
    case bool(Bool)
    /// An integer as written, e.g. `"-7"`; compared as text, so large ids keep every digit.
    case label(String)
    case number(Double)
    case string(String)
    case array([ComparedJSON])
    case object([String: ComparedJSON])

    /// Nesting deeper than this is refused rather than risking the stack.
    static let maximumDepth = 256

    /// Reads one JSON document (surrounding white space allowed); nil when `bytes` is
    /// not JSON or nests deeper than `maximumDepth`, and the comparison falls back to the text.
    init?(parsing bytes: [UInt8]) {
        var reader = Reader(bytes: bytes)
        guard let value = try? reader.value(depth: 0) else { return nil }
        reader.skipSpace()
        guard reader.index == bytes.count else { return nil }
        self = value
    }

    private struct Malformed: Error {}

    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func value(depth: Int) throws(Malformed) -> ComparedJSON {
            guard depth < ComparedJSON.maximumDepth else { throw Malformed() }
            skipSpace()
            guard index < bytes.count else { throw Malformed() }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "N"): try literal("NaN"); return .number(.nan)
            case UInt8(ascii: "I"): try literal("Infinity"); return .number(.infinity)
            default: return try number()
            }
        }

        private mutating func object(depth: Int) throws(Malformed) -> ComparedJSON {
            index += 1
            var members: [String: ComparedJSON] = [:]
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Malformed() }
                let key = try string()
                skipSpace()
                try expect(":")
                members[key] = try value(depth: depth + 1)
                skipSpace()
                guard index < bytes.count else { throw Malformed() }
                if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(members)
                }
                try expect(",")
            }
        }

        private mutating func array(depth: Int) throws(Malformed) -> ComparedJSON {
            index += 1
            var elements: [ComparedJSON] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            while true {
                elements.append(try value(depth: depth + 1))
                skipSpace()
                guard index < bytes.count else { throw Malformed() }
                if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(elements)
                }
                try expect(",")
            }
        }

        /// A string at `index` (its opening quote); escapes are left to `JSONDecoder`.
        private mutating func string() throws(Malformed) -> String {
            let start = index
            var end = index + 1
            var escaped = false
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                if bytes[end] == UInt8(ascii: "\\") {
                    escaped = true
                    end += 1
                }
                end += 1
            }
            guard end < bytes.count else { throw Malformed() }
            index = end + 1
            guard escaped else { return String(decoding: bytes[(start + 1)..<end], as: UTF8.self) }
            guard let text = try? JSONDecoder().decode(String.self, from: Data(bytes[start...end])) else {
                throw Malformed()
            }
            return text
        }

        private mutating func number() throws(Malformed) -> ComparedJSON {
            let start = index
            if bytes[index] == UInt8(ascii: "-"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "I") {
                index += 1
                try literal("Infinity")
                return .number(-.infinity)
            }
            var integral = true
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"): break
                case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): integral = false
                default:
                    return try finishNumber(from: start, integral: integral)
                }
                index += 1
            }
            return try finishNumber(from: start, integral: integral)
        }

        private func finishNumber(from start: Int, integral: Bool) throws(Malformed) -> ComparedJSON {
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            guard let value = Double(text) else { throw Malformed() }
            return integral ? .label(text) : .number(value)
        }

        private mutating func literal(_ word: String) throws(Malformed) {
            let expected = Array(word.utf8)
            guard index + expected.count <= bytes.count, Array(bytes[index..<(index + expected.count)]) == expected else {
                throw Malformed()
            }
            index += expected.count
        }

        private mutating func expect(_ character: Unicode.Scalar) throws(Malformed) {
            guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { throw Malformed() }
            index += 1
        }
    }
}
