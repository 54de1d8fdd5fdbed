@testable import EdgeRuntime
import Testing

/// The latency percentiles that health reports carry.
struct InferenceStatisticsTests {
    @Test func percentilesUseTheNearestRank() {
        let sorted = (1...100).map(Double.init)
        #expect(InferenceStatistics.percentile(0.50, of: sorted) == 50)
        #expect(InferenceStatistics.percentile(0.99, of: sorted) == 99)
        #expect(InferenceStatistics.percentile(0.99, of: [7]) == 7)
        #expect(InferenceStatistics.percentile(0.50, of: []) == 0)
    }

    @Test func countsErrorsAndKeepsOnlyTheRecentWindow() {
        let statistics = InferenceStatistics(window: 4)
        for milliseconds in [100, 100, 100, 100, 1, 2, 3, 4] {
            statistics.record(latency: .milliseconds(milliseconds), failed: milliseconds == 100)
        }
        let snapshot = statistics.snapshot
        #expect(snapshot.count == 8)
        #expect(snapshot.errors == 4)
        #expect(snapshot.p50Ms == 2)
        #expect(snapshot.p99Ms == 4)
    }
}
