import EdgeRuntime
import FleetTesting
import Foundation
import Testing

/// `ScoringHost` with real Python workers running the scoring host.
@Suite(.enabled(if: InferenceFixtures.shouldRun, "needs a Python with numpy, onnxruntime, scikit-learn, skl2onnx"))
struct InferenceTests {
    private func json(_ bytes: [UInt8]) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    }

    @Test func scoreSeesTheAzureMLEnvironmentAndARawString() async throws {
        let directory = try TemporaryDirectory()
        let module = try InferenceFixtures.behaviourModule(in: directory.url)
        let host = ScoringHost(configuration: InferenceFixtures.configuration("behaviour", module: module))
        try await host.start()
        #expect(host.isReady)
        let reply = try json(try await host.score(Array(#"{"action": "environment"}"#.utf8))) as? [String: Any]
        let model = module.appending(path: "model").path
        #expect(reply?["AZUREML_MODEL_DIR"] as? String == model)
        #expect(reply?["MODEL_DIR"] as? String == model)
        #expect(reply?["cwd"] as? String == module.path)
        #expect(reply?["started"] as? Bool == true)
        #expect(reply?["type"] as? String == "str")
        await host.stop()
        #expect(!host.isReady)
    }

    @Test func numpyValuesAndStringsSerialiseToJSON() async throws {
        let directory = try TemporaryDirectory()
        let module = try InferenceFixtures.behaviourModule(in: directory.url)
        let host = ScoringHost(configuration: InferenceFixtures.configuration("behaviour", module: module))
        try await host.start()
        let numpy = try await host.score(Array(#"{"action": "numpy"}"#.utf8))
        #expect(String(decoding: numpy, as: UTF8.self) == #"{"array": [0, 1, 2], "scalar": 1.5, "matrix": [[1, 0], [0, 1]]}"#)
        let string = try await host.score(Array(#"{"action": "string"}"#.utf8))
        #expect(String(decoding: string, as: UTF8.self) == #""plain text""#)
        await host.stop()
    }

    @Test func initFailureFailsTheStartWithTheException() async throws {
        let directory = try TemporaryDirectory()
        let module = try InferenceFixtures.behaviourModule(in: directory.url)
        let host = ScoringHost(
            configuration: InferenceFixtures.configuration("broken", module: module, environment: ["FAIL_INIT": "1"]))
        await #expect(throws: ScoringError.startFailed(
            module: "broken", reason: "init() raised RuntimeError: model file is missing")) {
            try await host.start()
        }
        #expect(!host.isReady)
        await #expect(throws: ScoringError.notReady(module: "broken")) {
            try await host.score(Array("{}".utf8))
        }
    }

    @Test func nonUTF8BodiesAreBadRequestsAndEmptyOnesReachRun() async throws {
        let directory = try TemporaryDirectory()
        let module = try InferenceFixtures.behaviourModule(in: directory.url)
        let host = ScoringHost(configuration: InferenceFixtures.configuration("behaviour", module: module))
        try await host.start()
        let notUTF8 = "Input cannot be decoded as UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
        await #expect(throws: ScoringError.badRequest(module: "behaviour", reason: notUTF8)) {
            try await host.score([0xff, 0xfe])
        }
        // As with azmlinfsrv, run(raw_data) gets "" (and the behaviour script's json.loads raises).
        await #expect(throws: ScoringError.runRaised(
            module: "behaviour", type: "JSONDecodeError", message: "Expecting value: line 1 column 1 (char 0)")) {
            try await host.score([])
        }
        await host.stop()
    }

    @Test func hookSeesEveryRequestAndStatsCountThem() async throws {
        let directory = try TemporaryDirectory()
        let module = try InferenceFixtures.behaviourModule(in: directory.url)
        let events = EventLog()
        let host = ScoringHost(
            configuration: InferenceFixtures.configuration("behaviour", module: module),
            onRequest: { events.append($0) })
        try await host.start()
        _ = try await host.score(Array(#"{"action": "string"}"#.utf8))
        _ = try? await host.score(Array(#"{"action": "raise", "value": 3}"#.utf8))
        let recorded = events.all
        #expect(recorded.map(\.status) == [200, 500])
        #expect(recorded.first?.input == #"{"action": "string"}"#)
        #expect(recorded.first?.output == #""plain text""#)
        #expect(recorded.last?.output.contains("ValueError") == true)
        let stats = host.inferenceStats
        #expect(stats.count == 2)
        #expect(stats.errors == 1)
        #expect(stats.p50Ms > 0 && stats.p99Ms >= stats.p50Ms)
        await host.stop()
    }
}

extension InferenceTests {
    @Test func theScoringHostShipsAsAResource() throws {
        let script = try String(contentsOf: ScoringHostScript.bundled, encoding: .utf8)
        #expect(script.contains("def main():"))
    }

    @Test func stoppingEndsARequestInFlight() async throws {
        let directory = try TemporaryDirectory()
        let module = try InferenceFixtures.behaviourModule(in: directory.url)
        let host = ScoringHost(configuration: InferenceFixtures.configuration("behaviour", module: module))
        try await host.start()
        let request = Task { () -> ScoringError? in
            do throws(ScoringError) {
                _ = try await host.score(Array(#"{"action": "sleep", "seconds": 60}"#.utf8))
                return nil
            } catch {
                return error
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        await host.stop()
        let failure = await request.value
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(failure?.httpStatus == 503)
    }
}

final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [InferenceEvent] = []

    func append(_ event: InferenceEvent) { lock.withLock { events.append(event) } }
    var all: [InferenceEvent] { lock.withLock { events } }
}
