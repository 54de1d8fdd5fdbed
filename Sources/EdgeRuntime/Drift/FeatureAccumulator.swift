import FleetCore

/// One feature's running summary over a window: Welford's mean and variance, range,
/// fixed-bin histogram and category counts. Each value costs O(log bins) and no allocation
/// (a new category costs one dictionary entry, up to `FeatureSummary.categoryLimit`).
struct FeatureAccumulator {
    private let bins: FeatureBins?
    private var count = 0
    private var numbers = 0
    private var mean = 0.0
    private var squares = 0.0
    private var low = Double.infinity
    private var high = -Double.infinity
    private var histogram: [Int]
    private var categories: [String: Int] = [:]

    init(bins: FeatureBins?) {
        self.bins = bins
        histogram = Array(repeating: 0, count: bins?.count ?? 0)
    }

    mutating func add(_ value: InputFeatures.Value) {
        count += 1
        switch value {
        case .number(let x):
            guard x.isFinite else { return }
            numbers += 1
            let delta = x - mean
            mean += delta / Double(numbers)
            squares += delta * (x - mean)
            if x < low { low = x }
            if x > high { high = x }
            if let bins { histogram[bins.index(of: x)] += 1 }
        case .string(let text):
            if categories[text] != nil || categories.count < FeatureSummary.categoryLimit {
                categories[text, default: 0] += 1
            } else {
                categories[FeatureSummary.otherCategory, default: 0] += 1
            }
        }
    }

    var summary: FeatureSummary {
        FeatureSummary(
            count: count, mean: numbers > 0 ? mean : nil, std: numbers > 0 ? (squares / Double(numbers)).squareRoot() : nil,
            min: numbers > 0 ? low : nil, max: numbers > 0 ? high : nil, histogram: bins == nil ? nil : histogram,
            categories: categories.isEmpty ? nil : categories)
    }
}
