import Foundation

/// One closed window of a module's input summaries: the `drift` telemetry record's data
/// and, for the latest window, `modules[].drift` in the health report, from which the
/// hub computes PSI.
public struct DriftWindow: Codable, Equatable, Sendable {
    public var start: Date
    public var end: Date
    /// The bundle whose baseline's bins the histograms use.
    public var bundle: ContentDigest
    /// Requests summarised.
    public var requests: Int
    /// Input rows summarised (a request may carry several).
    public var rows: Int
    /// By feature name.
    public var features: [String: FeatureSummary]

    public init(
        start: Date, end: Date, bundle: ContentDigest, requests: Int, rows: Int, features: [String: FeatureSummary]
    ) {
        self.start = start
        self.end = end
        self.bundle = bundle
        self.requests = requests
        self.rows = rows
        self.features = features
    }
}
