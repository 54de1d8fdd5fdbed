import FleetCore
import FleetHub
import Foundation

/// How the command lines print input drift: baselines, windows and PSI.
enum DriftOutput {
    /// `petal_length  count 150  mean 3.758  std 1.759  range 1..6.9  12 bins`.
    static func baseline(_ feature: BaselineFeature) -> String {
        let summary = feature.summary
        guard let mean = summary.mean, let std = summary.std, let low = summary.min, let high = summary.max else {
            return "\(feature.name)  count \(summary.count)  \(summary.categories?.count ?? 0) categories"
        }
        return "\(feature.name)  count \(summary.count)  mean \(number(mean))  std \(number(std))  range \(number(low))..\(number(high))  \(feature.bins?.count ?? 0) bins"
    }

    /// `petal_length 0.412`: the feature of the highest PSI, or empty without scores.
    static func highest(_ scores: [FeatureDrift]) -> String {
        guard let top = scores.max(by: { $0.psi < $1.psi }) else { return "" }
        return "\(top.feature) \(String(format: "%.3f", top.psi))"
    }

    /// The module's latest window and each feature's PSI, under its `running module:` line.
    static func print(module: ModuleHealth, scores: [FeatureDrift]) {
        guard let window = module.drift else { return }
        Swift.print("  drift: window \(window.start.formatted(.iso8601))..\(window.end.formatted(.iso8601)), \(window.requests) requests, \(window.rows) rows")
        let scored = Dictionary(scores.map { ($0.feature, $0.psi) }) { first, _ in first }
        for (name, summary) in window.features.sorted(by: { $0.key < $1.key }) {
            let psi = scored[name].map { "PSI \(String(format: "%.4f", $0))" } ?? "PSI -"
            let mean = summary.mean.map { "  mean \(number($0))  std \(number(summary.std ?? 0))" } ?? ""
            Swift.print("    \(name)  \(psi)  count \(summary.count)\(mean)")
        }
    }

    private static func number(_ value: Double) -> String {
        String(format: "%.4g", value)
    }
}
