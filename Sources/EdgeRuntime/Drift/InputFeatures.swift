import Foundation

/// The feature values of one scoring request's body, named as docs/drift.md says:
///
/// - `{"data": rows}` and `{"inputs": {"X": rows}}` with one input: column `i` of each row
///   is the baseline's `i`-th feature (`0`, `1`, … without a baseline); rows that are JSON
///   objects (`[{"sepal_length": 5.1, …}]`) name their features by key;
/// - `{"inputs": {"a": [...], "b": [...]}}` with several inputs: each input is the feature
///   of its name (its `i`-th column is `a.i` when its rows have several values);
/// - an Open Inference (V2) request `{"inputs": [{"name", "shape", "data"}]}`: the same,
///   with the tensors' data cut into rows by their shape.
///
/// Anything else (a body that is not JSON, or not one of these) has no features.
struct InputFeatures {
    /// One value of one feature: a number or a string.
    enum Value {
        case number(Double)
        case string(String)
    }

    /// Calls `visit(feature, value)` for every value in `body`; returns the rows seen.
    /// `names` are the baseline's feature names, in column order.
    static func visit(_ body: Data, names: [String], _ visit: (String, Value) -> Void) -> Int {
        guard let document = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return 0 }
        if let rows = document["data"] as? [Any] {
            return visitRows(rows, prefix: nil, names: names, visit)
        }
        if let inputs = document["inputs"] as? [String: Any] {
            return visitTensors(inputs.sorted { $0.key < $1.key }.map { ($0.key, $0.value as? [Any] ?? []) }, names: names, visit)
        }
        if let tensors = document["inputs"] as? [[String: Any]] {
            let named = tensors.compactMap { tensor -> (String, [Any])? in
                guard let name = tensor["name"] as? String, let data = tensor["data"] as? [Any] else { return nil }
                return (name, shaped(data, shape: (tensor["shape"] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue }))
            }
            return visitTensors(named, names: names, visit)
        }
        return 0
    }

    private static func visitTensors(_ tensors: [(String, [Any])], names: [String], _ visit: (String, Value) -> Void) -> Int {
        if tensors.count == 1 { return visitRows(tensors[0].1, prefix: nil, names: names, visit) }
        var rows = 0
        for (name, data) in tensors { rows = max(rows, visitRows(data, prefix: name, names: [], visit)) }
        return rows
    }

    /// Rows that are lists of values, objects, or single values (one column).
    private static func visitRows(_ rows: [Any], prefix: String?, names: [String], _ visit: (String, Value) -> Void) -> Int {
        // A single flat row of a one-input model: `{"data": [5.1, 3.5, 1.4, 0.2]}`.
        if prefix == nil, !rows.isEmpty, rows.allSatisfy({ value(of: $0) != nil }) {
            for (index, item) in rows.enumerated() {
                if let value = value(of: item) { visit(column(index, prefix: nil, names: names), value) }
            }
            return 1
        }
        for row in rows {
            if let values = row as? [Any] {
                if let prefix, values.count == 1, let value = value(of: values[0]) {
                    visit(prefix, value)
                    continue
                }
                for (index, item) in values.enumerated() {
                    if let value = value(of: item) { visit(column(index, prefix: prefix, names: names), value) }
                }
            } else if let record = row as? [String: Any] {
                for (key, item) in record {
                    if let value = value(of: item) { visit(prefix.map { "\($0).\(key)" } ?? key, value) }
                }
            } else if let value = value(of: row) {
                visit(prefix ?? column(0, prefix: nil, names: names), value)
            }
        }
        return rows.count
    }

    private static func column(_ index: Int, prefix: String?, names: [String]) -> String {
        if let prefix { return "\(prefix).\(index)" }
        return index < names.count ? names[index] : String(index)
    }

    private static func value(of item: Any) -> Value? {
        if let text = item as? String { return .string(text) }
        if let number = item as? NSNumber { return .number(number.doubleValue) }
        return nil
    }

    /// V2 data given flat (`[5.1, 3.5, …]` with shape [n, k]) cut into rows of k; with
    /// shape [n], one value per row.
    private static func shaped(_ data: [Any], shape: [Int]?) -> [Any] {
        if shape?.count == 1 { return data.map { [$0] } }
        guard let shape, shape.count == 2, shape[1] > 0, data.count == shape[0] * shape[1],
            !data.contains(where: { $0 is [Any] })
        else { return data }
        let width = shape[1]
        return stride(from: 0, to: data.count, by: width).map { Array(data[$0..<$0 + width]) }
    }
}
