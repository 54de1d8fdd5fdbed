import Foundation

/// The population stability index of one feature: how far a histogram observed on a
/// device moved from the baseline's histogram over the same bins (docs/drift.md).
///
/// `PSI = Σ (aᵢ − eᵢ) · ln(aᵢ / eᵢ)`, with `aᵢ` and `eᵢ` the shares of the observed and
/// the expected counts in bin `i`, each share raised to at least `epsilon` so an empty
/// bin gives a large but finite term. Below 0.1 is stable, above 0.2 a shift.
public enum PopulationStability {
    public static let epsilon = 1e-4

    /// Nil when either histogram is empty or they have different bins.
    public static func index(expected: [Int], actual: [Int], epsilon: Double = epsilon) -> Double? {
        guard expected.count == actual.count else { return nil }
        let expectedTotal = Double(expected.reduce(0, +))
        let actualTotal = Double(actual.reduce(0, +))
        guard expectedTotal > 0, actualTotal > 0 else { return nil }
        var sum = 0.0
        for (e, a) in zip(expected, actual) {
            let expectedShare = Swift.max(Double(e) / expectedTotal, epsilon)
            let actualShare = Swift.max(Double(a) / actualTotal, epsilon)
            sum += (actualShare - expectedShare) * log(actualShare / expectedShare)
        }
        return sum
    }

    /// The PSI of categorical counts: the baseline's categories and `other` for the rest.
    public static func index(expected: [String: Int], actual: [String: Int], epsilon: Double = epsilon) -> Double? {
        let names = expected.keys.sorted()
        func histogram(_ counts: [String: Int]) -> [Int] {
            names.map { counts[$0] ?? 0 } + [counts.filter { expected[$0.key] == nil }.values.reduce(0, +)]
        }
        return index(expected: histogram(expected), actual: histogram(actual), epsilon: epsilon)
    }
}
