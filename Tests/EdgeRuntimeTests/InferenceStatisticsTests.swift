@testable import EdgeRuntime
import FleetCore
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

/// What the inference hook hands the telemetry buffer.
struct InferenceEventTelemetryTests {
    @Test func anEventBecomesAnInferenceRecordWithParsedJSON() {
        let event = InferenceEvent(
            module: "iris", input: #"{"data": [[1, 2]]}"#, output: "not json", latency: .milliseconds(3), status: 500)
        let entry = event.telemetryEntry
        #expect(entry.module == "iris")
        #expect(entry.kind == .inference)
        #expect(
            entry.data
                == .object([
                    "input": .object(["data": .array([.array([.number(1), .number(2)])])]),
                    "output": .string("not json"), "latencyMs": .number(3), "status": .number(500),
                ]))
    }
}
