import EdgeRuntime
import FleetCore
import Foundation
import Testing

/// The drift summaries' cost per request for `benchmarks/drift/run.sh`, which builds the
/// tests in release mode: `DriftMonitor.observe(body:)` on `{"data": rows}` bodies of 4 and 32
/// features with a 12-bin baseline per feature, as a scoring request pays it. Writes
/// JSON to `FLEET_DRIFT_BENCHMARK_OUT`; not part of the normal suite.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["FLEET_DRIFT_BENCHMARK_OUT"] != nil, "benchmark; run benchmarks/drift/run.sh"))
struct DriftBenchmark {
    static let output = ProcessInfo.processInfo.environment["FLEET_DRIFT_BENCHMARK_OUT"]

    struct Figure: Codable {
        var features: Int
        var rowsPerRequest: Int
        var requests: Int
        var microsecondsPerRequest: Double
        var microsecondsPerFeatureValue: Double
    }

    static func measure(features: Int, rows: Int, requests: Int) -> Figure {
        let baseline = DriftBaseline(rows: 1000, features: (0..<features).map { index in
            BaselineFeature(
                name: "f\(index)", bins: FeatureBins.equalFrequency(sorted: (0..<1000).map { Double($0) / 1000 }),
                summary: FeatureSummary(count: 1000))
        })
        let monitor = DriftMonitor(
            module: "bench", bundle: ContentDigest(of: Data("bench".utf8)), settings: DriftSettings(windowSeconds: 3600),
            baseline: baseline)
        var generator = SystemRandomNumberGenerator()
        let bodies = (0..<64).map { _ in
            let matrix = (0..<rows).map { _ in (0..<features).map { _ in Double.random(in: 0..<1, using: &generator) } }
            return try! JSONSerialization.data(withJSONObject: ["data": matrix])
        }
        for body in bodies { monitor.observe(body: body) }
        let started = ContinuousClock.now
        for index in 0..<requests { monitor.observe(body: bodies[index % bodies.count]) }
        let elapsed = ContinuousClock.now - started
        let perRequest = (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(requests)
        return Figure(
            features: features, rowsPerRequest: rows, requests: requests, microsecondsPerRequest: perRequest,
            microsecondsPerFeatureValue: perRequest / Double(features * rows))
    }

    @Test func measureTheCostPerRequest() throws {
        let output = try #require(Self.output)
        let figures = [(4, 1), (4, 10), (32, 1), (32, 10)].map { Self.measure(features: $0.0, rows: $0.1, requests: 20_000) }
        try JSONEncoder().encode(figures).write(to: URL(fileURLWithPath: output))
        #expect(figures.allSatisfy { $0.microsecondsPerRequest > 0 })
    }
}
