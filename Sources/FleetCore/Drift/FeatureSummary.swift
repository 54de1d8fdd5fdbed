/// What one feature's values looked like over a window on the device, or over the
/// training data in a baseline: count, mean, standard deviation, range and the
/// fixed-bin histogram of numbers; counts per category of strings.
public struct FeatureSummary: Codable, Equatable, Sendable {
    /// Values seen (numbers and strings).
    public var count: Int
    /// Of the numbers; nil when there were none.
    public var mean: Double?
    /// Population standard deviation of the numbers.
    public var std: Double?
    public var min: Double?
    public var max: Double?
    /// Counts per bin of the feature's `FeatureBins`; nil without bins.
    public var histogram: [Int]?
    /// Counts per string value (at most `categoryLimit`, the rest under `other`); nil when none.
    public var categories: [String: Int]?

    public init(
        count: Int, mean: Double? = nil, std: Double? = nil, min: Double? = nil, max: Double? = nil,
        histogram: [Int]? = nil, categories: [String: Int]? = nil
    ) {
        self.count = count
        self.mean = mean
        self.std = std
        self.min = min
        self.max = max
        self.histogram = histogram
        self.categories = categories
    }

    /// Distinct string values counted per feature before the rest go under `otherCategory`.
    public static let categoryLimit = 20
    public static let otherCategory = "other"
}
