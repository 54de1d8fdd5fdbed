/// How the shadow's answer to one request compares with the live answer.
///
/// The answers agree when they have the same shape (same object keys, same array
/// lengths) and every label, string, boolean and null is equal at the same place.
/// Numbers are not part of agreement: their absolute difference is recorded per output
/// path instead — `probabilities[0][1]`, `score`, `$` for a bare number, `$[2]` for an
/// element of a bare array. Integers as written (`2`, not `2.0`) are labels (see
/// `ComparedJSON`); a path where either side wrote a non-integer is numeric. A number
/// that is NaN or infinite on one side only counts as a disagreement. An answer that is
/// not JSON is compared as text.
public struct ShadowComparison: Equatable, Sendable {
    public var agreed: Bool
    /// |shadow − live| per output path, for the first `maximumPaths` numeric paths in
    /// document order (object keys sorted), so a huge answer cannot bloat a report.
    public var differences: [String: Double]

    /// Most numeric paths one comparison (and one shadow's totals) keeps.
    public static let maximumPaths = 64

    public init(agreed: Bool, differences: [String: Double] = [:]) {
        self.agreed = agreed
        self.differences = differences
    }

    /// Compares two answers as `run` returned them (JSON bytes).
    public init(live: [UInt8], shadow: [UInt8]) {
        guard let live = ComparedJSON(parsing: live), let challenger = ComparedJSON(parsing: shadow) else {
            self.init(agreed: live == shadow)
            return
        }
        self.init(agreed: true)
        compare(live, challenger, at: "$")
    }

    private mutating func compare(_ live: ComparedJSON, _ shadow: ComparedJSON, at path: String) {
        switch (live, shadow) {
        case (.object(let left), .object(let right)):
            if Set(left.keys) != Set(right.keys) { agreed = false }
            for key in left.keys.sorted() {
                guard let other = right[key] else { continue }
                compare(left[key]!, other, at: path == "$" ? key : "\(path).\(key)")
            }
        case (.array(let left), .array(let right)):
            if left.count != right.count { agreed = false }
            for (index, (element, other)) in zip(left, right).enumerated() {
                compare(element, other, at: "\(path)[\(index)]")
            }
        case (.label(let left), .label(let right)):
            if left != right { agreed = false }
        case (.number(let left), .number(let right)):
            record(left, right, at: path)
        case (.number(let left), .label(let right)):
            record(left, Double(right) ?? .nan, at: path)
        case (.label(let left), .number(let right)):
            record(Double(left) ?? .nan, right, at: path)
        default:
            if live != shadow { agreed = false }
        }
    }

    private mutating func record(_ live: Double, _ shadow: Double, at path: String) {
        guard live.isFinite, shadow.isFinite else {
            if !(live == shadow || (live.isNaN && shadow.isNaN)) { agreed = false }
            return
        }
        guard differences.count < Self.maximumPaths || differences[path] != nil else { return }
        differences[path] = abs(shadow - live)
    }
}
