@testable import EdgeRuntime
import FleetCore
import Foundation
import Testing

/// How a shadow's answer is compared with the live one, on fixed JSON.
@Suite struct ShadowComparisonTests {
    private func compare(_ live: String, _ shadow: String) -> ShadowComparison {
        ShadowComparison(live: Array(live.utf8), shadow: Array(shadow.utf8))
    }

    @Test func equalLabelsAndStringsAgree() {
        #expect(compare(#"{"predictions": ["setosa", "virginica"]}"#, #"{"predictions":["setosa","virginica"]}"#)
            == ShadowComparison(agreed: true))
        #expect(compare(#""plain text""#, #""plain text""#).agreed)
        #expect(compare(#"{"ok": true, "none": null}"#, #"{"none": null, "ok": true}"#).agreed)
    }

    @Test func aDifferentLabelStringOrBooleanDisagrees() {
        #expect(!compare(#"{"predictions": ["setosa"]}"#, #"{"predictions": ["versicolor"]}"#).agreed)
        #expect(!compare(#"{"ok": true}"#, #"{"ok": false}"#).agreed)
        #expect(!compare(#"{"ok": null}"#, #"{"ok": 0}"#).agreed)
    }

    @Test func integersAsWrittenAreLabelsAndOtherNumbersAreMeasured() {
        // Class ids: compared for equality, no difference recorded.
        #expect(compare(#"{"class": 2}"#, #"{"class": 2}"#) == ShadowComparison(agreed: true))
        #expect(compare(#"{"class": 2}"#, #"{"class": 1}"#) == ShadowComparison(agreed: false))
        // A fraction or an exponent on either side makes the path numeric.
        #expect(compare(#"{"score": 0.5}"#, #"{"score": 0.75}"#) == ShadowComparison(agreed: true, differences: ["score": 0.25]))
        #expect(compare(#"{"score": 2.0}"#, #"{"score": 2}"#) == ShadowComparison(agreed: true, differences: ["score": 0]))
        #expect(abs(compare(#"{"score": 1e-3}"#, #"{"score": 3e-3}"#).differences["score"]! - 0.002) < 1e-12)
        #expect(compare("4.5", "4.0") == ShadowComparison(agreed: true, differences: ["$": 0.5]))
    }

    @Test func nestedNumbersArePathsAndLabelsBesideThemStillCount() {
        let live = #"{"predictions": ["setosa", "virginica"], "probabilities": [[0.9, 0.1], [0.2, 0.8]]}"#
        let shadow = #"{"predictions": ["setosa", "versicolor"], "probabilities": [[0.8, 0.2], [0.2, 0.8]]}"#
        let comparison = compare(live, shadow)
        #expect(!comparison.agreed)
        #expect(Set(comparison.differences.keys) == [
            "probabilities[0][0]", "probabilities[0][1]", "probabilities[1][0]", "probabilities[1][1]",
        ])
        #expect(abs(comparison.differences["probabilities[0][0]"]! - 0.1) < 1e-9)
        #expect(comparison.differences["probabilities[1][1]"] == 0)
        #expect(compare(#"[{"a": {"b": [1.5]}}]"#, #"[{"a": {"b": [1.0]}}]"#).differences == ["$[0].a.b[0]": 0.5])
    }

    @Test func mismatchedShapesDisagree() {
        #expect(!compare(#"{"a": 1}"#, #"{"a": 1, "b": 2}"#).agreed)
        #expect(!compare(#"{"a": 1}"#, #"{"b": 1}"#).agreed)
        #expect(!compare(#"[1, 2]"#, #"[1, 2, 3]"#).agreed)
        #expect(!compare(#"{"a": [0.5]}"#, #"{"a": 0.5}"#).agreed)
        #expect(!compare(#"{"a": "1"}"#, #"{"a": 1}"#).agreed)
        // The numbers the two shapes share are still measured.
        #expect(compare(#"[0.5, 0.25]"#, #"[0.75]"#) == ShadowComparison(agreed: false, differences: ["$[0]": 0.25]))
    }

    @Test func nanAndInfinityFromPythonCountOnlyWhenTheyDiffer() {
        #expect(compare(#"{"x": NaN}"#, #"{"x": NaN}"#) == ShadowComparison(agreed: true))
        #expect(compare(#"{"x": -Infinity}"#, #"{"x": -Infinity}"#) == ShadowComparison(agreed: true))
        #expect(compare(#"{"x": NaN}"#, #"{"x": 0.5}"#) == ShadowComparison(agreed: false))
    }

    @Test func escapedStringsAndTextThatIsNotJSON() {
        #expect(compare(#"{"name": "caf\u00e9 \"x\""}"#, #"{"name": "café \"x\""}"#).agreed)
        #expect(compare("not json", "not json").agreed)
        #expect(!compare("not json", #"{"a": 1}"#).agreed)
        #expect(!compare(#"{"a": 1"#, #"{"a": 1}"#).agreed)
    }

    @Test func aHugeAnswerKeepsOnlyTheFirstPaths() {
        let numbers = (0..<100).map { "\(Double($0) + 0.5)" }.joined(separator: ", ")
        let comparison = compare("[\(numbers)]", "[\(numbers)]")
        #expect(comparison.differences.count == ShadowComparison.maximumPaths)
        #expect(comparison.differences["$[0]"] == 0 && comparison.differences["$[99]"] == nil)
    }

    @Test func theTallyCountsSamplesAndAveragesDifferencesPerPath() {
        var tally = ShadowTally()
        tally.add(ShadowComparison(agreed: true, differences: ["score": 0.1]))
        tally.add(ShadowComparison(agreed: false, differences: ["score": 0.3]))
        tally.add(ShadowComparison(agreed: true))
        tally.addError()
        tally.skipped += 2
        #expect(tally.samples == 4 && tally.agreed == 2 && tally.errors == 1 && tally.skipped == 2)
        let score = tally.differences["score"]
        #expect(score?.count == 2)
        #expect(abs((score?.mean ?? 0) - 0.2) < 1e-12)
        #expect(score?.max == 0.3)
        let health = ShadowHealth(
            bundleDigest: ContentDigest(of: Data()), status: .running, samples: tally.samples, agreed: tally.agreed)
        #expect(health.agreement == 0.5)
    }
}
