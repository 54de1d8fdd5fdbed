import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Synchronization
import Testing

/// How the device names and summarises the features of each request shape (docs/drift.md).
@Suite struct DriftMonitorTests {
    static let bundle = ContentDigest(of: Data("bundle".utf8))
    static let baseline = DriftBaseline(rows: 4, features: [
        BaselineFeature(name: "length", bins: FeatureBins(edges: [0, 1, 2]), summary: FeatureSummary(count: 4)),
        BaselineFeature(name: "width", bins: FeatureBins(edges: [0, 10]), summary: FeatureSummary(count: 4)),
    ])
    static let start = Date(timeIntervalSince1970: 1_000)

    func monitor(_ features: DriftSettings.Features = .auto, baseline: DriftBaseline? = baseline) -> DriftMonitor {
        DriftMonitor(
            module: "iris", bundle: Self.bundle, settings: DriftSettings(features: features, windowSeconds: 10), baseline: baseline,
            now: Self.start)
    }

    func window(_ monitor: DriftMonitor, _ bodies: String...) throws -> DriftWindow {
        for body in bodies { monitor.observe(body: Data(body.utf8)) }
        return try #require(monitor.close(now: Self.start.addingTimeInterval(10)))
    }

    @Test func dataRowsNameTheirColumnsByTheBaselineAndFillItsBins() throws {
        let window = try window(monitor(), #"{"data": [[0.5, 5], [1.5, 20], [3, -1]]}"#, #"{"data": [2, 5]}"#)
        #expect(window.requests == 2 && window.rows == 4)
        let length = try #require(window.features["length"])
        #expect(length.count == 4 && length.histogram == [0, 1, 2, 1] && length.min == 0.5 && length.max == 3)
        #expect(abs((length.mean ?? 0) - 1.75) < 1e-12)
        #expect(abs((length.std ?? 0) - (((0.5 - 1.75) * (0.5 - 1.75) + 0.0625 + 1.5625 + 0.0625) / 4).squareRoot()) < 1e-12)
        #expect(window.features["width"]?.histogram == [1, 2, 1])
        #expect(window.bundle == Self.bundle && window.end == Self.start.addingTimeInterval(10))
    }

    @Test func inputsByNameOpenInferenceTensorsAndRecordsNameTheirFeatures() throws {
        let single = try window(monitor(baseline: nil), #"{"inputs": {"X": [[1, 2], [3, 4]]}}"#)
        #expect(single.features.keys.sorted() == ["0", "1"] && single.features["1"]?.mean == 3)
        let several = try window(monitor(baseline: nil), #"{"inputs": {"a": [1, 2, 3], "b": [[4], [5], [6]], "c": [[1, 2]]}}"#)
        #expect(several.features.keys.sorted() == ["a", "b", "c.0", "c.1"] && several.rows == 3)
        let v2 = try window(monitor(), #"{"inputs": [{"name": "X", "shape": [2, 2], "datatype": "FP32", "data": [0.5, 5, 1.5, 20]}]}"#)
        #expect(v2.rows == 2 && v2.features["length"]?.histogram == [0, 1, 1, 0])
        let tensors = try window(monitor(baseline: nil), #"{"inputs": [{"name": "a", "shape": [3], "data": [1, 2, 3]}, {"name": "b", "shape": [3, 1], "data": [[4], [5], [6]]}]}"#)
        #expect(tensors.features.keys.sorted() == ["a", "b"] && tensors.features["a"]?.count == 3)
        let records = try window(monitor(baseline: nil), #"{"data": [{"colour": "red", "size": 2}, {"colour": "blue", "size": 4}]}"#)
        #expect(records.features["colour"]?.categories == ["red": 1, "blue": 1] && records.features["size"]?.mean == 3)
    }

    @Test func onlyTheChosenFeaturesAreSummarisedAndBodiesWithoutInputsAreNotCounted() throws {
        let chosen = try window(monitor(.named(["width"])), #"{"data": [[0.5, 5]]}"#, "not json", #"{"other": 1}"#)
        #expect(chosen.features.keys.sorted() == ["width"] && chosen.requests == 1)
        let auto = try window(monitor(), #"{"data": [[0.5, 5, 99]]}"#)
        #expect(auto.features.keys.sorted() == ["length", "width"])
    }

    @Test func aWideInputIsSummarisedOnItsFirstFiftyFeatures() throws {
        let row = (0..<784).map(String.init).joined(separator: ", ")
        let wide = try window(monitor(baseline: nil), "{\"data\": [[\(row)]]}")
        #expect(wide.features.count == DriftMonitor.featureLimit && wide.features["49"] != nil && wide.features["50"] == nil)
    }

    @Test func aWindowClosesOnlyOnceItsTimeIsUpAndAnEmptyOneKeepsTheLatest() throws {
        let monitor = monitor()
        monitor.observe(body: Data(#"{"data": [[1, 1]]}"#.utf8))
        #expect(monitor.close(now: Self.start.addingTimeInterval(9.9)) == nil && monitor.latest == nil)
        let first = try #require(monitor.close(now: Self.start.addingTimeInterval(10.2)))
        #expect(monitor.latest == first)
        // The next window starts where the first ended; with no requests it closes empty.
        #expect(monitor.close(now: Self.start.addingTimeInterval(20.1)) == nil)
        #expect(monitor.latest == first)
        monitor.observe(body: Data(#"{"data": [[1, 1]]}"#.utf8))
        let third = try #require(monitor.close(now: Self.start.addingTimeInterval(30)))
        #expect(third.start == Self.start.addingTimeInterval(20) && third.requests == 1)
    }

    @Test func requestsTheModuleRefusedAreNotSummarised() throws {
        let monitor = monitor()
        monitor.observe(InferenceEvent(module: "iris", input: #"{"data": [[1, 1]]}"#, output: "{}", latency: .zero, status: 400))
        monitor.observe(InferenceEvent(module: "iris", input: #"{"data": [[1, 1]]}"#, output: "{}", latency: .zero, status: 200))
        #expect(try #require(monitor.close(now: Self.start.addingTimeInterval(10))).requests == 1)
    }

    /// The daemon's loop: a window that closes becomes one `drift` record in the real
    /// buffer (its data the window) and wakes the health reporter.
    @Test func aClosedWindowBecomesADriftTelemetryRecordAndWakesTheReport() async throws {
        let folder = try TemporaryDirectory(prefix: "drift-record")
        let buffer = try TelemetryBuffer(path: folder.file("telemetry.sqlite"), deviceId: "gw-001")
        let drift = InputDrift()
        let monitor = drift.start(
            module: "iris", bundle: Self.bundle, settings: DriftSettings(windowSeconds: 1), baseline: Self.baseline)
        #expect(drift.start(module: "iris", bundle: Self.bundle, settings: DriftSettings(windowSeconds: 1), baseline: Self.baseline) === monitor)
        monitor.observe(body: Data(#"{"data": [[0.5, 5], [1.5, 5]]}"#.utf8))
        let woken = Mutex(0)
        let loop = Task { await drift.run(buffer: buffer, tick: .milliseconds(50), logger: Logger(label: "test")) { woken.withLock { $0 += 1 } } }
        defer { loop.cancel() }
        #expect(await eventually(timeout: .seconds(5)) { (try? buffer.stats().buffered) == 1 })
        let record = try #require(try buffer.readRecords(in: 1...1, limit: nil).first)
        #expect(record.kind == .drift && record.module == "iris")
        let window = try FleetJSON.decode(DriftWindow.self, from: try FleetJSON.encode(record.data))
        #expect(window.rows == 2 && window.features["length"]?.histogram == [0, 1, 1, 0])
        // The record's dates are FleetJSON's (milliseconds); the rest is the window itself.
        #expect(drift.latest(module: "iris", bundle: Self.bundle)?.features == window.features)
        #expect(await eventually { woken.withLock { $0 } == 1 })
        drift.stop(module: "iris")
        #expect(drift.latest(module: "iris", bundle: Self.bundle) == nil)
    }
}
