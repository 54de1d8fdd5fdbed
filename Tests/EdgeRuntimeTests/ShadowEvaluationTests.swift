@testable import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

/// A live module and its shadow, each with real Python workers, behind the real local
/// API: what the shadow evaluator reports, and that the live answers never change.
@Suite(.enabled(if: InferenceFixtures.shouldRun, "needs a Python with numpy, onnxruntime, scikit-learn, skl2onnx"))
struct ShadowEvaluationTests {
    /// A dependency-free `score.py` answering `{"i": n}` with a label, a class id and a
    /// score. `disagreeing` changes the label and id of every `n` with `n % 10 < 3`
    /// (30 % of consecutive inputs); `offset` is added to the score; `{"slow": true}`
    /// sleeps `delay` seconds first; `{"pid": true}` answers the worker's pid.
    static func script(
        version: Int, disagreeing: Bool = false, offset: Double = 0, failInit: Bool = false, delay: Double = 0
    ) -> String {
        """
        import json, os, time

        def init():
            if \(failInit ? "True" : "False"):
                raise RuntimeError("model v\(version) is corrupt")

        def run(raw_data):
            request = json.loads(raw_data)
            if request.get("pid"):
                return {"pid": os.getpid()}
            if request.get("slow"):
                time.sleep(\(delay))
            i = request["i"]
            label = (i + 1) % 3 if \(disagreeing ? "True" : "False") and i % 10 < 3 else i % 3
            return {"label": "class-%d" % label, "id": label, "score": i / 10.0 + \(offset)}
        """
    }

    static func module(_ script: String, in directory: TemporaryDirectory, name: String) throws -> URL {
        let folder = directory.url.appending(path: name)
        try FileManager.default.createDirectory(at: folder.appending(path: "model"), withIntermediateDirectories: true)
        try script.write(to: folder.appending(path: "score.py"), atomically: true, encoding: .utf8)
        return folder
    }

    static let quietLogger: Logger = {
        var logger = Logger(label: "shadow-test")
        logger.logLevel = .critical
        return logger
    }()

    /// Serves `live` as module `m` with `shadow` (started, or left to fail) behind it.
    private func withShadow(
        live: String, shadow: String?, sampleRate: Double = 1, shadowWorkers: Int = 1, startShadow: Bool = true,
        recorder: InferenceRecorder? = nil,
        _ body: (APIClient, ShadowEvaluator?) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory(prefix: "shadow")
        let host = ScoringHost(
            configuration: InferenceFixtures.configuration("m", module: try Self.module(live, in: directory, name: "live")))
        try await host.start()
        let modules = LocalModules()
        modules.set(host)
        let evaluator = try shadow.map { script in
            ShadowEvaluator(
                module: "m", liveDigest: ContentDigest(of: Data(live.utf8)), digest: ContentDigest(of: Data(script.utf8)),
                sampleRate: sampleRate,
                configuration: InferenceFixtures.configuration(
                    ShadowEvaluator.hostName(of: "m"), module: try Self.module(script, in: directory, name: "shadow"),
                    workers: shadowWorkers),
                logger: Self.quietLogger,
                onSample: recorder?.shadowHook(settings: TelemetrySettings(sampleRate: 1, collectOutputs: true)))
        }
        if let evaluator {
            if startShadow { try await evaluator.start() }
            modules.setShadow(evaluator)
        }
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let server = LocalAPIServer(
            configuration: LocalAPIConfiguration(port: 0), modules: modules, logger: Self.quietLogger,
            onListening: { listening.yield($0) })
        let serving = Task { try await server.run() }
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next() ?? 0
        var failure: (any Error)?
        do {
            try await body(APIClient(port: port), evaluator)
        } catch {
            failure = error
        }
        serving.cancel()
        _ = await serving.result
        await evaluator?.stop()
        await host.stop()
        if let failure { throw failure }
    }

    /// Scores `{"i": n}` for each `n`, one at a time; after each, waits until the shadow
    /// has taken the request (sampled or skipped), so none is skipped for being busy.
    private func scoreSequentially(_ inputs: Range<Int>, _ api: APIClient, _ evaluator: ShadowEvaluator?) async throws -> [Data] {
        var answers: [Data] = []
        for i in inputs {
            let (status, body) = try await api.post("/v1/modules/m/score", #"{"i": \#(i)}"#)
            #expect(status == 200)
            answers.append(body)
            if let evaluator {
                let done = answers.count
                #expect(await eventually { evaluator.health.samples + evaluator.health.skipped >= done })
            }
        }
        return answers
    }

    @Test func aShadowThatDisagreesOnThirtyPercentIsReportedAtSeventyPercent() async throws {
        let directory = try TemporaryDirectory()
        let buffer = try TelemetryBuffer(path: directory.file("telemetry.sqlite"), deviceId: "device-1")
        let recorder = InferenceRecorder(buffer: buffer, logger: Self.quietLogger)
        let live = Self.script(version: 1)
        try await withShadow(
            live: live, shadow: Self.script(version: 2, disagreeing: true, offset: 0.25), recorder: recorder
        ) { api, evaluator in
            _ = try await scoreSequentially(0..<50, api, evaluator)
            let health = try #require(evaluator?.health)
            #expect(health.status == .running && health.lastError == nil)
            #expect(health.samples == 50 && health.skipped == 0 && health.errors == 0)
            #expect(health.agreed == 35)
            #expect(health.agreement == 0.7)
            let score = try #require(health.differences["score"])
            #expect(score.count == 50 && abs(score.mean - 0.25) < 1e-9 && abs(score.max - 0.25) < 1e-9)
            // "id" is written as an integer on both sides: a label, never a difference.
            #expect(health.differences["id"] == nil)
            #expect(health.p50Ms > 0 && health.p99Ms >= health.p50Ms)

            // The module's health endpoint shows the same record.
            let (status, body) = try await api.get("/v1/modules/m/health")
            #expect(status == 200)
            let shown = try JSONSerialization.jsonObject(with: body) as? [String: Any]
            let shadow = shown?["shadow"] as? [String: Any]
            #expect(shadow?["samples"] as? Int == 50 && shadow?["agreed"] as? Int == 35)
        }
        await recorder.flush()
        let records = try buffer.readRecords(in: 1...1000, limit: nil)
        #expect(records.count == 50 && records.allSatisfy { $0.kind == .shadow && $0.module == "m" })
        let disagreeing = records.filter { $0.data.field("agreed") == .bool(false) }
        #expect(disagreeing.count == 15)
        let first = try #require(records.first?.data)
        #expect(first.field("status") == .number(200))
        #expect(first.field("live") == .object(["label": .string("class-0"), "id": .number(0), "score": .number(0)]))
        #expect(first.field("shadow") == .object(["label": .string("class-1"), "id": .number(1), "score": .number(0.25)]))
        #expect(first.field("differences") == .object(["score": .number(0.25)]))
    }

    @Test func aShadowThatAgreesIsReportedAtFullAgreementAndTheLiveAnswersDoNotChange() async throws {
        let live = Self.script(version: 1)
        var alone: [Data] = []
        try await withShadow(live: live, shadow: nil) { api, _ in
            alone = try await scoreSequentially(0..<20, api, nil)
        }
        try await withShadow(live: live, shadow: Self.script(version: 2)) { api, evaluator in
            let shadowed = try await scoreSequentially(0..<20, api, evaluator)
            #expect(shadowed == alone)
            let health = try #require(evaluator?.health)
            #expect(health.samples == 20 && health.agreement == 1)
            #expect(health.differences["score"]?.max == 0)
        }
    }

    @Test func aShadowWhoseInitRaisesIsReportedAndTheLiveAnswersAreUnchanged() async throws {
        let live = Self.script(version: 1)
        var alone: [Data] = []
        try await withShadow(live: live, shadow: nil) { api, _ in
            alone = try await scoreSequentially(0..<10, api, nil)
        }
        try await withShadow(
            live: live, shadow: Self.script(version: 2, failInit: true), startShadow: false
        ) { api, evaluator in
            let evaluator = try #require(evaluator)
            await #expect(throws: ScoringError.self) { try await evaluator.start() }
            #expect(try await scoreSequentially(0..<10, api, evaluator) == alone)
            let health = evaluator.health
            #expect(health.status == .backoff)
            #expect(health.lastError?.contains("model v2 is corrupt") == true)
            #expect(health.samples == 0 && health.skipped == 10)
        }
    }

    @Test func theLiveAnswerNeverWaitsForABusyShadowAndBusyMeansSkipped() async throws {
        // The shadow's one worker takes 3 s per request; the live one answers at once.
        try await withShadow(live: Self.script(version: 1), shadow: Self.script(version: 2, delay: 3)) { api, evaluator in
            let evaluator = try #require(evaluator)
            let started = ContinuousClock.now
            for _ in 0..<3 {
                let (status, body) = try await api.post("/v1/modules/m/score", #"{"i": 1, "slow": true}"#)
                #expect(status == 200)
                #expect(String(decoding: body, as: UTF8.self) == #"{"label": "class-1", "id": 1, "score": 0.1}"#)
            }
            #expect(ContinuousClock.now - started < .seconds(2), "the live answers must not wait for the shadow")
            // The first request went to the shadow; the other two found its worker busy.
            #expect(evaluator.health.skipped == 2)
            #expect(await eventually { evaluator.health.samples == 1 })
            #expect(evaluator.health.agreement == 1)
        }
    }
}

extension JSONValue {
    /// The value of `key` when this is an object.
    func field(_ key: String) -> JSONValue? {
        if case .object(let fields) = self { fields[key] } else { nil }
    }
}
