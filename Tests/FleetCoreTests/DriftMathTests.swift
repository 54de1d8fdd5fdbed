import FleetCore
import Foundation
import Testing

/// The bins and the PSI formula the hub and the device share (docs/drift.md).
@Suite struct DriftMathTests {
    @Test func valuesFallInUnderflowInnerAndOverflowBinsWithTheMaximumInTheLastInnerBin() {
        let bins = FeatureBins(edges: [1, 2, 3, 4])
        #expect(bins.count == 5)
        #expect([0.5, 1, 1.5, 2, 2.9, 3, 3.99, 4, 4.01].map(bins.index(of:)) == [0, 1, 1, 2, 2, 3, 3, 3, 4])
    }

    @Test func equalFrequencyEdgesAreNumpysLinearQuantilesWithoutDuplicates() {
        let values = (1...101).map(Double.init)
        #expect(FeatureBins.equalFrequency(sorted: values).edges == stride(from: 1.0, through: 101, by: 10).map { $0 })
        // np.quantile([1, 2, 4], [0, .5, 1]) = [1, 2, 4]; [.25] = 1.5.
        #expect(FeatureBins.equalFrequency(sorted: [1, 2, 4], quantiles: 4).edges == [1, 1.5, 2, 3, 4])
        // np.quantile([0, 0, 0, 0, 1], np.linspace(0, 1, 11)) = [0 × 8, 0.2, 0.6, 1]: repeated edges go.
        let repeated = FeatureBins.equalFrequency(sorted: [0, 0, 0, 0, 1]).edges
        #expect(repeated.count == 4 && zip(repeated, [0, 0.2, 0.6, 1]).allSatisfy { abs($0 - $1) < 1e-12 }, "\(repeated)")
        let constant = FeatureBins.equalFrequency(sorted: [7, 7, 7])
        #expect(constant.edges == [7, 7] && constant.index(of: 7) == 1 && constant.index(of: 6) == 0 && constant.index(of: 8) == 2)
    }

    @Test func psiIsZeroForTheSameSharesAndFollowsTheFormulaWithEpsilonForEmptyBins() throws {
        #expect(PopulationStability.index(expected: [10, 20, 30], actual: [1, 2, 3]) == 0)
        let psi = try #require(PopulationStability.index(expected: [50, 50, 0], actual: [25, 50, 25]))
        let e = [0.5, 0.5, 1e-4], a = [0.25, 0.5, 0.25]
        let formula = zip(e, a).reduce(0.0) { $0 + ($1.1 - $1.0) * log($1.1 / $1.0) }
        #expect(abs(psi - formula) < 1e-12)
        #expect(PopulationStability.index(expected: [1, 2], actual: [0, 0]) == nil)
        #expect(PopulationStability.index(expected: [1, 2], actual: [1, 2, 3]) == nil)
    }

    @Test func categoricalPSICountsUnknownCategoriesAsOther() throws {
        let same = try #require(PopulationStability.index(expected: ["a": 10, "b": 10], actual: ["a": 5, "b": 5]))
        #expect(same == 0)
        let moved = try #require(PopulationStability.index(expected: ["a": 10, "b": 10], actual: ["a": 5, "c": 5]))
        #expect(moved > 1)
    }

    @Test func driftSettingsDecodeAutoOrNamesAndKeepStatesWithoutThemByteForByte() throws {
        let auto = try FleetJSON.decode(DriftSettings.self, from: Data(#"{"features":"auto","windowSeconds":60}"#.utf8))
        #expect(auto == DriftSettings(features: .auto, windowSeconds: 60))
        let named = try FleetJSON.decode(DriftSettings.self, from: Data(#"{"features":["a","b"],"windowSeconds":5}"#.utf8))
        #expect(named.features == .named(["a", "b"]) && named.includes("a") && !named.includes("c"))
        #expect(throws: DecodingError.self) {
            try FleetJSON.decode(DriftSettings.self, from: Data(#"{"features":"all","windowSeconds":5}"#.utf8))
        }
        let plain = String(decoding: try FleetJSON.encode(TelemetrySettings(sampleRate: 1)), as: UTF8.self)
        #expect(!plain.contains("drift"))
    }
}
