import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

/// The daemon serving a deployed iris `python-scoring` module end to end: real broker,
/// bundle over real HTTP, a real venv with real Python workers, the real local API, and
/// telemetry through the real SQLite buffer into a `file://` store.
@Suite(
    .serialized,
    .enabled(
        if: Fixtures.shouldRun(needing: "mosquitto") && InferenceFixtures.shouldRun,
        "needs mosquitto and a Python with numpy, onnxruntime, scikit-learn, skl2onnx"))
struct LocalInferenceIntegrationTests {
    /// The iris example wrapped so a request with `"emit": true` also calls
    /// `edge_telemetry.emit` before scoring.
    static let wrapper = """
        import json

        import iris_score
        from edge_telemetry import emit


        def init():
            iris_score.init()


        def run(raw_data):
            if json.loads(raw_data).get("emit"):
                emit({"temp": 21.5})
            return iris_score.run(raw_data)
        """

    static func irisBundle(in directory: TemporaryDirectory) throws -> TestBundle {
        let module = try InferenceFixtures.irisModule(in: directory.url)
        return try TestBundle.make(
            name: "iris",
            files: [
                "score.py": Data(wrapper.utf8),
                "iris_score.py": try Data(contentsOf: module.appending(path: "score.py")),
                "model/iris.onnx": try Data(contentsOf: module.appending(path: "model/iris.onnx")),
            ],
            command: nil, kind: .pythonScoring)
    }

    /// The test Python's packages, for a module venv made without network access.
    static let sitePackages: String = {
        do {
            return try Fixtures.run(
                InferenceFixtures.python, ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            fatalError("cannot ask \(InferenceFixtures.python) for its site-packages: \(error)")
        }
    }()

    @Test func deployedIrisScoresAndItsTelemetryLandsInStorageExactlyOnce() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let work = try TemporaryDirectory(prefix: "inference")
        let storage = work.url.appending(path: "storage")
        let port = try Fixtures.freePort()
        var config = device.config
        config.localAPI = LocalAPISettings(port: port)
        config.storage = StorageSettings(url: "file://\(storage.path)")
        config.telemetry = TelemetryBufferSettings(uploadIntervalSeconds: 0.3)
        config.reportIntervalSeconds = 1
        let daemon = Task { [config] in
            try await EdgeRuntimeDaemon(
                config: config, settings: RuntimeIntegrationTests.settings, logger: Logger(label: "runtime")
            ).run()
        }
        defer { daemon.cancel() }

        let bundle = try Self.irisBundle(in: work)
        try device.server.serve(bundle)
        let spec = ModuleSpec(
            name: "iris", kind: .pythonScoring, bundle: bundle.reference(baseURL: device.server.baseURL),
            restartPolicy: .onUnhealthy, workers: 2,
            // The venv is made without network (no requirements); the test Python's packages stand in.
            env: ["PYTHONPATH": Self.sitePackages],
            telemetry: TelemetrySettings(sampleRate: 1, collectInputs: true, collectOutputs: true))
        _ = try await device.publish(revision: 1, [spec])
        #expect(await eventually(timeout: .seconds(60)) {
            (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied)
        })
        #expect(try device.status().modules.first?.status == .running)

        let api = APIClient(port: port)
        let sample = try Data(contentsOf: InferenceFixtures.repositoryRoot.appending(path: "examples/iris/sample-request.json"))
        for _ in 0..<3 {
            let (status, body) = try await api.post("/v1/modules/iris/score", sample)
            #expect(status == 200)
            let reply = try JSONSerialization.jsonObject(with: body) as? [String: Any]
            #expect(reply?["predictions"] as? [String] == ["setosa", "versicolor", "virginica"])
        }
        let (emitStatus, _) = try await api.post("/v1/modules/iris/score", #"{"data": [[5.1, 3.5, 1.4, 0.2]], "emit": true}"#)
        #expect(emitStatus == 200)
        let (postStatus, _) = try await api.post("/v1/modules/iris/telemetry", #"{"door": "open"}"#)
        #expect(postStatus == 202)

        // 4 inference records, the emitted and the posted custom record, and metric records.
        var records: [TelemetryRecord] = []
        #expect(await eventually(timeout: .seconds(20)) {
            records = (try? Self.uploadedRecords(in: storage)) ?? []
            return records.filter { $0.kind == .inference }.count >= 4 && records.filter { $0.kind == .custom }.count >= 2
                && Self.irisMetric(in: records)?["inferenceCount"] == .number(4)
        })
        #expect(Set(records.map(\.seq)).count == records.count)
        let inference = records.filter { $0.kind == .inference }
        #expect(inference.count == 4)
        let first = try #require(inference.first)
        #expect(first.deviceId == "gw-001" && first.module == "iris")
        guard case .object(let data) = first.data else { Issue.record("inference data is not an object"); return }
        #expect(data["bundle"] == .string(bundle.digest.description))
        #expect(data["status"] == .number(200))
        #expect(data["input"] == (try JSONDecoder().decode(JSONValue.self, from: sample)))
        if case .object(let output) = data["output"] {
            #expect(output["predictions"] == .array([.string("setosa"), .string("versicolor"), .string("virginica")]))
        } else {
            Issue.record("inference output is not an object: \(String(describing: data["output"]))")
        }
        if case .number(let latency) = data["latencyMs"] { #expect(latency > 0) } else { Issue.record("no latencyMs") }
        let custom = records.filter { $0.kind == .custom }.map(\.data)
        #expect(custom.count == 2)
        #expect(custom.contains(.object(["temp": .number(21.5)])))
        #expect(custom.contains(.object(["door": .string("open")])))
        let iris = try #require(Self.irisMetric(in: records))
        #expect(iris["restarts"] == .number(0) && iris["status"] == .string("running"))
        let metric = try #require(records.last { $0.kind == .metric })
        if case .object(let fields) = metric.data {
            #expect(fields["memoryBytes"] != nil && fields["cpuPercent"] != nil)
        }

        // The health report carries the module's inference counters and the telemetry numbers.
        var report: HealthReport?
        #expect(await eventually(timeout: .seconds(10)) {
            report = try? await ReportCollector.retained(device)?.0
            return report?.modules.first { $0.name == "iris" }?.inference?.count == 4 && (report?.telemetry.uploaded ?? 0) > 0
        })
        let irisHealth = try #require(report?.modules.first { $0.name == "iris" })
        #expect(irisHealth.inference?.errors == 0)
        #expect((irisHealth.inference?.p50Ms ?? 0) > 0)

        // Stopping the runtime stops the workers and the API.
        daemon.cancel()
        _ = await daemon.result
        #expect(processes(workingIn: device.dataDirectory.modules).isEmpty)
        await #expect(throws: (any Error).self) { _ = try await api.get("/v1/health") }
    }

    /// A dependency-free scoring module answering its version; `failInit` makes `init()` raise.
    static func echoBundle(version: Int, failInit: Bool = false) throws -> TestBundle {
        let script = """
            def init():
                if \(failInit ? "True" : "False"):
                    raise RuntimeError("model v\(version) is corrupt")

            def run(raw_data):
                return {"version": \(version)}
            """
        return try TestBundle.make(
            name: "echo", version: version, files: ["score.py": Data(script.utf8)], command: nil, kind: .pythonScoring)
    }

    @Test func anUpdateWhoseInitRaisesIsRolledBackAndTheOldVersionKeepsServing() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let port = try #require(device.config.localAPI?.port)
        let daemon = Task {
            try await EdgeRuntimeDaemon(
                config: device.config, settings: RuntimeIntegrationTests.settings, logger: Logger(label: "runtime")
            ).run()
        }
        defer { daemon.cancel() }
        func spec(_ bundle: TestBundle) throws -> ModuleSpec {
            try device.server.serve(bundle)
            return ModuleSpec(
                name: "echo", kind: .pythonScoring, bundle: bundle.reference(baseURL: device.server.baseURL), workers: 1)
        }
        let api = APIClient(port: port)

        let v1 = try Self.echoBundle(version: 1)
        _ = try await device.publish(revision: 1, [try spec(v1)])
        #expect(await eventually(timeout: .seconds(60)) {
            (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied)
        })
        var (status, body) = try await api.post("/v1/modules/echo/score", "{}")
        #expect(status == 200 && String(decoding: body, as: UTF8.self) == #"{"version": 1}"#)

        _ = try await device.publish(revision: 2, [try spec(try Self.echoBundle(version: 2, failInit: true))])
        #expect(await eventually(timeout: .seconds(60)) { (try? device.status().desired.status) == .rolledBack })
        #expect(try device.status().desired.error?.contains("model v2 is corrupt") == true)
        #expect(await eventually { (try? device.status().modules.first?.status) == .running })
        #expect(try device.status().modules.first?.bundleDigest == v1.digest)
        (status, body) = try await api.post("/v1/modules/echo/score", "{}")
        #expect(status == 200 && String(decoding: body, as: UTF8.self) == #"{"version": 1}"#)
    }

    /// The iris module's fields in the newest metric record.
    static func irisMetric(in records: [TelemetryRecord]) -> [String: JSONValue]? {
        guard let metric = records.filter({ $0.kind == .metric }).max(by: { $0.seq < $1.seq }),
            case .object(let fields) = metric.data, case .object(let modules) = fields["modules"],
            case .object(let iris) = modules["iris"]
        else { return nil }
        return iris
    }

    /// Every record of every `.jsonl.gz` object under `folder`, in seq order.
    static func uploadedRecords(in folder: URL) throws -> [TelemetryRecord] {
        guard let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else { return [] }
        var records: [TelemetryRecord] = []
        for case let file as URL in files where file.lastPathComponent.hasSuffix(".jsonl.gz") {
            let lines = try Gzip.decompress(Data(contentsOf: file)).split(separator: UInt8(ascii: "\n"))
            records += try lines.map { try FleetJSON.decode(TelemetryRecord.self, from: Data($0)) }
        }
        return records.sorted { $0.seq < $1.seq }
    }
}
