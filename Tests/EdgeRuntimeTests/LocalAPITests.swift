import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The local inference API over real HTTP, with real Python workers behind it.
@Suite(.enabled(if: InferenceFixtures.shouldRun, "needs a Python with numpy, onnxruntime, scikit-learn, skl2onnx"))
struct LocalAPITests {
    @Test func irisPredictionsComeBackThroughTheAPI() async throws {
        let directory = try TemporaryDirectory()
        let module = try InferenceFixtures.irisModule(in: directory.url)
        try await withAPI(InferenceFixtures.configuration("iris", module: module, workers: 2)) { api in
            let sample = try Data(
                contentsOf: InferenceFixtures.repositoryRoot.appending(path: "examples/iris/sample-request.json"))
            let (status, body) = try await api.post("/v1/modules/iris/score", sample)
            #expect(status == 200)
            let reply = try JSONSerialization.jsonObject(with: body) as? [String: Any]
            #expect(reply?["predictions"] as? [String] == ["setosa", "versicolor", "virginica"])
            #expect((reply?["probabilities"] as? [[Double]])?.count == 3)
        }
    }

    @Test func anExceptionInRunIsA500AndTheWorkerStaysUp() async throws {
        try await withBehaviourAPI { api in
            let (status, body) = try await api.post("/v1/modules/behaviour/score", #"{"action": "raise", "value": 42}"#)
            #expect(status == 500)
            let error = try JSONSerialization.jsonObject(with: body) as? [String: String]
            #expect(error?["error"] == "ValueError: cannot score 42")
            #expect(error?["type"] == "ValueError")
            #expect(error?["module"] == "behaviour")
            let (next, _) = try await api.post("/v1/modules/behaviour/score", #"{"action": "echo"}"#)
            #expect(next == 200)
        }
    }

    @Test func aWorkerThatExitsGives503ThenRecovers() async throws {
        try await withBehaviourAPI { api in
            let (status, body) = try await api.post("/v1/modules/behaviour/score", #"{"action": "exit"}"#)
            #expect(status == 503)
            #expect(String(decoding: body, as: UTF8.self).contains("exited while scoring"))
            #expect(try await api.eventuallySucceeds("/v1/modules/behaviour/score", #"{"action": "echo"}"#))
            let (health, _) = try await api.get("/v1/modules/behaviour/health")
            #expect(health == 200)
        }
    }

    @Test func runPastTheTimeoutGives504ThenRecovers() async throws {
        try await withBehaviourAPI(timeout: .seconds(1)) { api in
            let started = ContinuousClock.now
            let (status, body) = try await api.post("/v1/modules/behaviour/score", #"{"action": "sleep", "seconds": 30}"#)
            #expect(status == 504)
            #expect(ContinuousClock.now - started < .seconds(20), "the request must end long before run() would")
            #expect(String(decoding: body, as: UTF8.self).contains("took longer than"))
            #expect(try await api.eventuallySucceeds("/v1/modules/behaviour/score", #"{"action": "echo"}"#))
        }
    }

    @Test func concurrentRequestsSpreadOverTheWorkers() async throws {
        let barrier = try TemporaryDirectory()
        try await withBehaviourAPI(workers: 3) { api in
            // Each run() waits until three requests are inside run() at once, which
            // only happens when the three requests went to three different workers.
            let request = #"{"action": "barrier", "count": 3, "directory": "\#(barrier.path)"}"#
            let replies = try await withThrowingTaskGroup(of: BarrierReply.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        let (status, body) = try await api.post("/v1/modules/behaviour/score", request)
                        #expect(status == 200)
                        return try JSONDecoder().decode(BarrierReply.self, from: body)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.met })
            #expect(Set(replies.map(\.pid)).count == 3)
        }
    }

    @Test func anOversizeBodyIs413() async throws {
        try await withBehaviourAPI(maxBodyBytes: 64) { api in
            let (status, body) = try await api.post(
                "/v1/modules/behaviour/score", "{\"data\": \"\(String(repeating: "x", count: 200))\"}")
            #expect(status == 413)
            #expect(String(decoding: body, as: UTF8.self).contains("larger than the limit of 64 bytes"))
        }
    }

    @Test func unknownModulesAre404() async throws {
        try await withBehaviourAPI { api in
            let (score, body) = try await api.post("/v1/modules/nothing/score", "{}")
            #expect(score == 404)
            let error = try JSONSerialization.jsonObject(with: body) as? [String: String]
            #expect(error?["module"] == "nothing")
            #expect(try await api.get("/v1/modules/nothing/health").0 == 404)
            #expect(try await api.post("/v1/modules/nothing/telemetry", "{}").0 == 404)
        }
    }

    @Test func healthShowsReadinessAndCounters() async throws {
        try await withBehaviourAPI { api in
            _ = try await api.post("/v1/modules/behaviour/score", #"{"action": "echo"}"#)
            let (status, body) = try await api.get("/v1/health")
            #expect(status == 200)
            let health = try JSONSerialization.jsonObject(with: body) as? [String: Any]
            #expect(health?["status"] as? String == "ok")
            let module = (health?["modules"] as? [[String: Any]])?.first
            #expect(module?["module"] as? String == "behaviour")
            #expect(module?["ready"] as? Bool == true)
            #expect((module?["inference"] as? [String: Any])?["count"] as? Int == 1)
        }
    }

    @Test func telemetryGoesToTheSinkAndBadJSONIs400() async throws {
        let sink = RecordingSink()
        try await withBehaviourAPI(telemetry: sink) { api in
            let (status, _) = try await api.post("/v1/modules/behaviour/telemetry", #"{"temperature": 21.5}"#)
            #expect(status == 202)
            #expect(sink.records.first?.0 == "behaviour")
            #expect(sink.records.first?.1 == .object(["temperature": .number(21.5)]))
            #expect(try await api.post("/v1/modules/behaviour/telemetry", "not json").0 == 400)
        }
    }

    @Test func telemetryLandsInTheRealBuffer() async throws {
        let directory = try TemporaryDirectory()
        let buffer = try TelemetryBuffer(path: directory.file("telemetry.sqlite"), deviceId: "device-1")
        try await withBehaviourAPI(telemetry: buffer) { api in
            let (status, _) = try await api.post("/v1/modules/behaviour/telemetry", #"{"door": "open"}"#)
            #expect(status == 202)
        }
        let records = try buffer.readRecords(in: 1...1, limit: nil)
        #expect(records.map(\.module) == ["behaviour"])
        #expect(records.first?.kind == .custom)
        #expect(records.first?.data == .object(["door": .string("open")]))
    }

    /// A really full file system: the buffer on a 2 MiB tmpfs that a ballast file fills.
    /// Posts are refused with 507 and counted, uploads go on, and once the ballast is gone
    /// the same buffer takes records again; every acknowledged record reaches the store.
    @Test(.enabled(if: Fixtures.isCI || getuid() == 0, "needs root to mount a tmpfs"))
    func aFullDiskRefusesTelemetryWith507AndRecoversWhenSpaceReturns() async throws {
        let directory = try TemporaryDirectory(prefix: "disk-full")
        let small = directory.file("small")
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        try Fixtures.run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small])
        // Lazily: the buffer's files are open until the buffer goes.
        defer { _ = try? Fixtures.run("umount", ["-l", small]) }
        // The data dir of a device whose buffer this is, for `edge-runtime status`.
        let dataDirectory = DataDirectory(URL(fileURLWithPath: small))
        _ = try StateStore(url: dataDirectory.database)
        let config = directory.file("gw-001.yaml")
        try DeviceConfig(
            deviceId: "gw-001", broker: BrokerSettings(url: "mqtt://127.0.0.1:1883", insecure: true),
            hub: HubSettings(publicKey: HubSigningKey().publicKey.base64, bundleBaseURL: "http://127.0.0.1:8080"),
            dataDir: small
        ).save(to: config)
        let path = dataDirectory.telemetryBuffer.path
        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001", limits: TelemetryBufferLimits(reserveBytes: 256 << 10))
        let store = URL(fileURLWithPath: directory.file("store"))
        let uploader = TelemetryUploader(
            buffer: buffer, destination: try StorageSettings(url: "file://\(store.path)").destination(), batchRecords: 100)
        let ballast = "\(small)/ballast"
        let padding = String(repeating: "x", count: 500)
        var acknowledged: [Int] = []
        try await withBehaviourAPI(telemetry: buffer) { api in
            func post(_ n: Int) async throws -> (Int, Data) {
                try await api.post("/v1/modules/behaviour/telemetry", #"{"n": \#(n), "padding": "\#(padding)"}"#)
            }
            for n in 0..<20 {
                #expect(try await post(n).0 == 202)
                acknowledged.append(n)
            }
            // dd stops when the file system is full.
            try Fixtures.run("/bin/sh", ["-c", "dd if=/dev/zero of=\(ballast) bs=4096 2>/dev/null; true"])
            var refusal: (status: Int, body: Data)?
            for n in 20..<2020 {
                let answer = try await post(n)
                guard answer.0 == 202 else {
                    refusal = answer
                    break
                }
                acknowledged.append(n)
            }
            let (status, body) = try #require(refusal)
            #expect(status == 507, "\(String(decoding: body, as: UTF8.self))")
            let json = try JSONSerialization.jsonObject(with: body) as? [String: Any]
            #expect(json?["reason"] as? String == "disk-full")
            #expect(json?["dataDir"] as? String == small)
            #expect(json?["freeBytes"] is Int)
            #expect((json?["error"] as? String)?.contains("the disk is full") == true)
            let shown = try KilledRuntimeTests.cli(["status", "--config", config])
            #expect(shown.contains("telemetry: \(acknowledged.count) buffered, 0 uploaded, 0 dropped, refused disk-full 1"), "\(shown)")
            #expect(try await post(-1).0 == 507)
            // The runtime's own records are dropped and counted, nothing thrown.
            let recorder = InferenceRecorder(buffer: buffer, logger: Self.quietLogger)
            let hook = try #require(recorder.hook(digest: ContentDigest(of: Data("bundle".utf8)), settings: TelemetrySettings(sampleRate: 1)))
            for _ in 0..<3 { hook(InferenceEvent(module: "behaviour", input: "{}", output: "{}", latency: .milliseconds(1), status: 200)) }
            await recorder.flush()
            #expect(try buffer.stats().refusedDiskFull == 5)
            #expect(try buffer.stats().refused == ["disk-full": 5])
            #expect(try buffer.stats().diskFull)

            // Uploads go on while the disk is full.
            #expect(try await uploader.uploadAll() > 0)
            #expect(try buffer.stats().buffered == 0)

            try FileManager.default.removeItem(atPath: ballast)
            #expect(try await post(10_000).0 == 202)
            acknowledged.append(10_000)
            #expect(try buffer.stats().diskFull == false)
        }
        try await uploader.uploadAll()
        let uploaded = try LocalInferenceIntegrationTests.uploadedRecords(in: store).compactMap { record -> Int? in
            guard case .object(let fields) = record.data, case .number(let n) = fields["n"] else { return nil }
            return Int(n)
        }
        #expect(uploaded == acknowledged)
        // The count survives in the file, for `edge-runtime status`.
        #expect(TelemetryBuffer.recordedHealth(at: path)?.refused == ["disk-full": 5])
    }

    @Test(.enabled(if: Fixtures.shouldRun(needing: "curl"), "needs curl"))
    func theAPIAlsoAnswersOnTheUnixSocket() async throws {
        let directory = try TemporaryDirectory()
        let module = try InferenceFixtures.behaviourModule(in: directory.url)
        let socket = directory.file("api.sock")
        try await withAPI(InferenceFixtures.configuration("behaviour", module: module), unixSocketPath: socket) { _ in
            var answer = ""
            _ = await eventually(timeout: .seconds(3)) {
                answer = (try? Fixtures.run(
                    Fixtures.which("curl") ?? "curl",
                    ["-s", "-w", "\\n%{http_code}", "--unix-socket", socket, "-d", #"{"action": "string"}"#,
                     "http://localhost/v1/modules/behaviour/score"])) ?? ""
                return answer.hasSuffix("200")
            }
            #expect(answer == "\"plain text\"\n200")
        }
    }

    @Test func aModuleWhoseInitRaisesAnswers503WithItsLastErrorAndHealthListsItFailing() async throws {
        let directory = try TemporaryDirectory()
        let dataDirectory = DataDirectory(directory.url.appending(path: "data"))
        try dataDirectory.create()
        let modules = LocalModules()
        // A long back-off keeps the module failed for the whole test.
        let supervisor = Supervisor(
            store: try StateStore(url: dataDirectory.database), dataDirectory: dataDirectory,
            settings: RuntimeSettings(backoff: BackoffSchedule(initial: .seconds(60))), logger: Self.quietLogger,
            scoring: ScoringServices(modules: modules))
        let folder = try InferenceFixtures.behaviourModule(in: directory.url, name: "broken")
        await supervisor.run(
            ModuleLaunch(
                name: "broken", digest: ContentDigest(of: Data("broken".utf8)), folder: folder, command: [],
                environment: ["FAIL_INIT": "1"], restartPolicy: .always,
                scoring: ScoringProgram(
                    entry: "score.py", python: InferenceFixtures.python, workers: 1, telemetry: TelemetrySettings())))
        #expect(await eventually { await supervisor.statuses().first?.lastError != nil })
        #expect(await supervisor.statuses().first?.status == .backoff)
        let reason = "init() raised RuntimeError: model file is missing"
        try await Self.serving(modules) { port in
            let api = APIClient(port: port)
            let (score, scoreBody) = try await api.post("/v1/modules/broken/score", #"{"action": "echo"}"#)
            #expect(score == 503)
            let error = try JSONSerialization.jsonObject(with: scoreBody) as? [String: String]
            #expect(error?["module"] == "broken")
            #expect(error?["error"]?.contains(reason) == true)
            #expect(error?["message"] == error?["error"])

            let (health, healthBody) = try await api.get("/v1/modules/broken/health")
            #expect(health == 503)
            let module = try JSONSerialization.jsonObject(with: healthBody) as? [String: Any]
            #expect(module?["ready"] as? Bool == false)
            #expect(module?["failing"] as? Bool == true)
            #expect((module?["lastError"] as? String)?.contains(reason) == true)

            let (all, allBody) = try await api.get("/v1/health")
            #expect(all == 200)
            let runtime = try JSONSerialization.jsonObject(with: allBody) as? [String: Any]
            #expect(runtime?["status"] as? String == "degraded")
            let listed = (runtime?["modules"] as? [[String: Any]])?.first { $0["module"] as? String == "broken" }
            #expect(listed?["failing"] as? Bool == true)
            #expect((listed?["lastError"] as? String)?.contains(reason) == true)

            await supervisor.stop("broken")
            #expect(try await api.post("/v1/modules/broken/score", "{}").0 == 404)
        }
    }

    // MARK: - Harness

    /// Cancelling the server at the end of a test makes Hummingbird log errors; hide them.
    private static let quietLogger: Logger = {
        var logger = Logger(label: "local-api-test")
        logger.logLevel = .critical
        return logger
    }()

    private func withBehaviourAPI(
        workers: Int = 1, timeout: Duration = .seconds(10), maxBodyBytes: Int = 1 << 20,
        telemetry: (any LocalTelemetrySink)? = nil, _ body: (APIClient) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        let module = try InferenceFixtures.behaviourModule(in: directory.url)
        try await withAPI(
            InferenceFixtures.configuration("behaviour", module: module, workers: workers, timeout: timeout),
            maxBodyBytes: maxBodyBytes, telemetry: telemetry, body)
    }

    private func withAPI(
        _ configuration: ScoringConfiguration, maxBodyBytes: Int = 1 << 20, telemetry: (any LocalTelemetrySink)? = nil,
        unixSocketPath: String? = nil,
        _ body: (APIClient) async throws -> Void
    ) async throws {
        let host = ScoringHost(configuration: configuration)
        try await host.start()
        let modules = LocalModules()
        modules.set(host)
        do {
            try await Self.serving(
                modules, maxBodyBytes: maxBodyBytes, telemetry: telemetry, unixSocketPath: unixSocketPath
            ) { port in try await body(APIClient(port: port)) }
        } catch {
            await host.stop()
            throw error
        }
        await host.stop()
    }

    /// Runs `body` with the port of a local API serving `modules` on 127.0.0.1, then stops it.
    static func serving(
        _ modules: LocalModules, maxBodyBytes: Int = 1 << 20, telemetry: (any LocalTelemetrySink)? = nil,
        unixSocketPath: String? = nil, _ body: (Int) async throws -> Void
    ) async throws {
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let server = LocalAPIServer(
            configuration: LocalAPIConfiguration(port: 0, unixSocketPath: unixSocketPath, maxBodyBytes: maxBodyBytes), modules: modules,
            telemetry: telemetry, logger: Self.quietLogger, onListening: { listening.yield($0) })
        let serving = Task { try await server.run() }
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next() ?? 0
        do {
            try await body(port)
        } catch {
            serving.cancel()
            throw error
        }
        serving.cancel()
        _ = await serving.result
    }
}

/// What the behaviour script's `barrier` action returns.
struct BarrierReply: Decodable, Sendable {
    var met: Bool
    var pid: Int
}

/// A small HTTP client for the API on 127.0.0.1.
struct APIClient: Sendable {
    let port: Int

    func post(_ path: String, _ body: String) async throws -> (Int, Data) {
        try await post(path, Data(body.utf8))
    }

    func post(_ path: String, _ body: Data) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.timeoutInterval = 30
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    func get(_ path: String) async throws -> (Int, Data) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// Retries a request that may get 503 while a worker is replaced; true once it gets 200.
    func eventuallySucceeds(_ path: String, _ body: String, within limit: Duration = .seconds(20)) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let (status, _) = try await post(path, body)
            if status == 200 { return true }
            #expect(status == 503)
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}

final class RecordingSink: LocalTelemetrySink, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [(String, JSONValue)] = []

    func record(module: String, data: JSONValue) async throws {
        lock.withLock { stored.append((module, data)) }
    }

    var records: [(String, JSONValue)] { lock.withLock { stored } }
}
