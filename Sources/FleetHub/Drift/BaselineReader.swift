import FleetCore
import Foundation

/// Reads a model's training data (`fleethub model register --baseline FILE`) into a
/// `DriftBaseline`: per feature, 10 equal-frequency bins with under- and overflow, and
/// the summary of the training values in them (docs/drift.md).
///
/// A `.npy` file (numpy's format, numeric dtype, shape (rows,) or (rows, features)) names
/// its features `0`, `1`, …; a CSV file names them by its header, or by index when its
/// first line is all numbers. A CSV column of strings is a categorical feature, unless
/// the model's signature says its inputs are numbers.
public enum BaselineReader {
    /// - Parameter signature: the model's inputs, when known: their feature count (and
    ///   that they are numbers) are checked.
    public static func read(_ path: String, signature: ModelSignature?) throws -> DriftBaseline {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw RegistryError.invalidBaseline(path, reason: "cannot read it: \(error.localizedDescription)")
        }
        let table: BaselineTable
        if path.lowercased().hasSuffix(".npy") {
            table = try NumpyArray.table(data, file: path)
        } else if path.lowercased().hasSuffix(".csv") {
            table = try CSVTable.table(data, file: path)
        } else {
            throw RegistryError.invalidBaseline(path, reason: "expected a .csv or .npy file of the training inputs")
        }
        try check(table, against: signature, file: path)
        return table.baseline()
    }

    /// The number of features a signature's inputs take per row (nil when a shape is
    /// not fixed), and whether they are all numbers.
    static func expectedFeatures(_ signature: ModelSignature) -> (count: Int?, numeric: Bool) {
        var count = 0
        var known = true
        for input in signature.inputs {
            let dimensions = input.shape.dropFirst()
            if dimensions.contains(where: { $0 < 0 }) { known = false }
            count += dimensions.filter { $0 > 0 }.reduce(1, *)
        }
        return (known && !signature.inputs.isEmpty ? count : nil, !signature.inputs.contains { $0.datatype == "BYTES" })
    }

    private static func check(_ table: BaselineTable, against signature: ModelSignature?, file: String) throws {
        guard let signature else { return }
        let (count, numeric) = expectedFeatures(signature)
        let inputs = signature.inputs.map(\.summary).joined(separator: ", ")
        if let count, count != table.columns.count {
            throw RegistryError.invalidBaseline(
                file, reason: "it has \(table.columns.count) feature column(s) but the model's inputs (\(inputs)) take \(count) per row")
        }
        if numeric, let index = table.columns.firstIndex(where: { $0.strings != nil }) {
            let column = table.columns[index]
            throw RegistryError.invalidBaseline(
                file, reason: "column \(index + 1) (\(column.name)) holds '\(column.firstString ?? "")', not a number, but the model's inputs (\(inputs)) are numbers")
        }
    }
}

/// Training data as columns: numbers, or strings for a categorical feature.
struct BaselineTable {
    struct Column {
        var name: String
        var numbers: [Double] = []
        var strings: [String]?
        var firstString: String? { strings?.first }
    }

    var columns: [Column]
    var rows: Int

    func baseline() -> DriftBaseline {
        let features = columns.map { column -> BaselineFeature in
            if let strings = column.strings {
                var counts: [String: Int] = [:]
                for text in strings { counts[text, default: 0] += 1 }
                return BaselineFeature(name: column.name, bins: nil, summary: FeatureSummary(count: strings.count, categories: counts))
            }
            let sorted = column.numbers.sorted()
            let bins = FeatureBins.equalFrequency(sorted: sorted)
            var histogram = Array(repeating: 0, count: bins.count)
            for value in column.numbers { histogram[bins.index(of: value)] += 1 }
            let mean = column.numbers.reduce(0, +) / Double(column.numbers.count)
            let variance = column.numbers.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(column.numbers.count)
            return BaselineFeature(
                name: column.name, bins: bins,
                summary: FeatureSummary(
                    count: column.numbers.count, mean: mean, std: variance.squareRoot(), min: sorted.first, max: sorted.last,
                    histogram: histogram))
        }
        return DriftBaseline(rows: rows, features: features)
    }
}
