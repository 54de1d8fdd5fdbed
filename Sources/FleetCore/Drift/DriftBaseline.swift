/// The training data's summary of each input feature, with the bins the device uses
/// (docs/drift.md): `fleethub model register --baseline FILE` makes it, `module package`
/// puts it in `module.json`, the device bins its inputs with it and the hub compares
/// the device's histograms with it (PSI).
public struct DriftBaseline: Codable, Equatable, Sendable {
    /// Rows of training data summarised.
    public var rows: Int
    /// In column order: feature `i` is the `i`-th value of a row.
    public var features: [BaselineFeature]

    public init(rows: Int, features: [BaselineFeature]) {
        self.rows = rows
        self.features = features
    }

    /// The feature named `name`, if the baseline has it.
    public func feature(_ name: String) -> BaselineFeature? {
        features.first { $0.name == name }
    }
}

/// One feature of a baseline: its name, its bins (numeric features) and its summary.
public struct BaselineFeature: Codable, Equatable, Sendable {
    /// The CSV header's name, else the column index (`0`, `1`, …).
    public var name: String
    /// Nil for a categorical (string) feature.
    public var bins: FeatureBins?
    public var summary: FeatureSummary

    public init(name: String, bins: FeatureBins?, summary: FeatureSummary) {
        self.name = name
        self.bins = bins
        self.summary = summary
    }
}
