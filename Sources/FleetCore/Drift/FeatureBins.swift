/// The fixed bins of one numeric feature, defined by the training data's baseline and
/// shared by the hub and the device, so their histograms compare bin by bin.
///
/// `edges` are ascending and distinct (a constant feature has `[v, v]`): the training
/// minimum, its deciles and its maximum. With `m` edges there are `m + 1` bins: below the first edge (underflow),
/// `[edges[i], edges[i+1])` for each inner bin (the last one includes the maximum), and
/// above the last edge (overflow).
public struct FeatureBins: Codable, Equatable, Sendable {
    public var edges: [Double]

    public init(edges: [Double]) {
        self.edges = edges
    }

    /// How many bins the histogram has.
    public var count: Int { edges.count + 1 }

    /// The bin `value` falls in, by binary search (O(log edges), no allocation).
    public func index(of value: Double) -> Int {
        guard let last = edges.last, value >= edges[0] else { return 0 }
        if value > last { return edges.count }
        if value == last { return Swift.max(1, edges.count - 1) }
        // The number of edges <= value.
        var low = 0
        var high = edges.count
        while low < high {
            let middle = (low + high) / 2
            if edges[middle] <= value { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Equal-frequency bins of `values` (sorted ascending, at least one): the minimum,
    /// the `quantiles - 1` inner quantiles (linear interpolation, as numpy's default) and
    /// the maximum, duplicates removed.
    public static func equalFrequency(sorted values: [Double], quantiles: Int = 10) -> FeatureBins {
        var edges: [Double] = []
        for step in 0...quantiles {
            let position = Double(values.count - 1) * Double(step) / Double(quantiles)
            let below = Int(position.rounded(.down))
            let above = min(below + 1, values.count - 1)
            let edge = values[below] + (values[above] - values[below]) * (position - Double(below))
            if edges.last.map({ edge > $0 }) ?? true { edges.append(edge) }
        }
        // A constant feature keeps one inner bin, [v, v].
        return FeatureBins(edges: edges.count == 1 ? [edges[0], edges[0]] : edges)
    }
}
