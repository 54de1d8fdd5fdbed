import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

/// A module deployed with a shadow through the daemon: real broker, bundles over real
/// HTTP, real venvs and Python workers, the real local API, health reports and telemetry.
@Suite(
    .serialized,
    .enabled(
        if: Fixtures.shouldRun(needing: "mosquitto") && InferenceFixtures.shouldRun,
        "needs mosquitto and a Python with numpy, onnxruntime, scikit-learn, skl2onnx"))
struct ShadowDeploymentTests {
    static func bundle(_ script: String, version: Int) throws -> TestBundle {
        try TestBundle.make(
            name: "scorer", version: version, files: ["score.py": Data(script.utf8)], command: nil, kind: .pythonScoring)
    }

    @Test func aShadowThatFailsNeverDisturbsTheLiveModuleAndAChangedShadowDoesNotRestartIt() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let work = try TemporaryDirectory(prefix: "shadow-deploy")
        let storage = work.url.appending(path: "storage")
        var config = device.config
        config.storage = StorageSettings(url: "file://\(storage.path)")
        config.telemetry = TelemetryBufferSettings(uploadIntervalSeconds: 0.3)
        config.reportIntervalSeconds = 1
        let port = try #require(config.localAPI?.port)
        let daemon = Task { [config] in
            try await EdgeRuntimeDaemon(
                config: config, settings: RuntimeIntegrationTests.settings, logger: Logger(label: "runtime")
            ).run()
        }
        defer { daemon.cancel() }
        let api = APIClient(port: port)
        let live = try Self.bundle(ShadowEvaluationTests.script(version: 1), version: 1)
        try device.server.serve(live)
        func spec(shadow: TestBundle?, served: Bool = true) throws -> ModuleSpec {
            if let shadow, served { try device.server.serve(shadow) }
            return ModuleSpec(
                name: "scorer", kind: .pythonScoring, bundle: live.reference(baseURL: device.server.baseURL),
                restartPolicy: .onUnhealthy, telemetry: TelemetrySettings(sampleRate: 1, collectOutputs: true),
                shadow: shadow.map { ShadowSpec(bundle: $0.reference(baseURL: device.server.baseURL), sampleRate: 1) })
        }
        func livePid() async throws -> Int? {
            let (status, body) = try await api.post("/v1/modules/scorer/score", #"{"pid": true}"#)
            guard status == 200 else { return nil }
            return (try JSONSerialization.jsonObject(with: body) as? [String: Int])?["pid"]
        }
        func shadow() throws -> ShadowHealth? { try device.status().modules.first?.shadow }

        // A shadow bundle that cannot be downloaded: the revision is applied, the live module serves.
        let missing = try Self.bundle(ShadowEvaluationTests.script(version: 9), version: 9)
        _ = try await device.publish(revision: 1, [try spec(shadow: missing, served: false)])
        #expect(await eventually(timeout: .seconds(60)) {
            (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied)
        })
        #expect(try device.status().modules.first?.status == .running)
        #expect(try shadow()?.status == .failed)
        #expect(try shadow()?.lastError?.contains("HTTP 404") == true)
        let pid = try #require(try await livePid())

        // A shadow whose init() raises: reported in back-off, retried; the live module is untouched.
        let broken = try Self.bundle(ShadowEvaluationTests.script(version: 2, failInit: true), version: 2)
        _ = try await device.publish(revision: 2, [try spec(shadow: broken)])
        #expect(await eventually(timeout: .seconds(60)) {
            (try? device.status().desired) == DesiredStateStatus(revision: 2, status: .applied)
                && (try? shadow()?.lastError?.contains("model v2 is corrupt")) == true
        })
        #expect(try shadow()?.status == .backoff)
        #expect(try await livePid() == pid)

        // A shadow that disagrees on 30 % of the inputs, swapped in without restarting the live module.
        let challenger = try Self.bundle(ShadowEvaluationTests.script(version: 3, disagreeing: true), version: 3)
        _ = try await device.publish(revision: 3, [try spec(shadow: challenger)])
        #expect(await eventually(timeout: .seconds(60)) {
            (try? device.status().desired) == DesiredStateStatus(revision: 3, status: .applied)
                && (try? shadow()?.status) == .running
        })
        #expect(try shadow()?.bundleDigest == challenger.digest)
        // The shadow's workers yield the CPU to the live ones.
        let shadowWorkers = processes(workingIn: device.dataDirectory.moduleFolder(challenger.digest))
        #expect(!shadowWorkers.isEmpty && shadowWorkers.allSatisfy { ProcessTable.entry(pid: $0)?.nice == ScoringConfiguration.backgroundNiceness })
        #expect(processes(workingIn: device.dataDirectory.moduleFolder(live.digest)).allSatisfy { ProcessTable.entry(pid: $0)?.nice == 0 })
        func mirrored() async throws -> Int {
            let (_, body) = try await api.get("/v1/modules/scorer/health")
            let health = try JSONDecoder().decode(ModuleShadowOnly.self, from: body)
            return (health.shadow?.samples ?? 0) + (health.shadow?.skipped ?? 0)
        }
        // Each request is mirrored (the shadow is running); waiting for each keeps its one worker free.
        #expect(try await livePid() == pid)
        #expect(await eventually { (try? await mirrored()) == 1 })
        for i in 0..<20 {
            #expect(try await api.post("/v1/modules/scorer/score", #"{"i": \#(i)}"#).0 == 200)
            #expect(await eventually { (try? await mirrored()) == i + 2 })
        }
        var report: HealthReport?
        #expect(await eventually(timeout: .seconds(10)) {
            report = try? await ReportCollector.retained(device)?.0
            return (report?.modules.first?.shadow?.samples ?? 0) >= 21
        })
        let reported = try #require(report?.modules.first?.shadow)
        #expect(reported.bundleDigest == challenger.digest && reported.status == .running)
        // The pid request (always a disagreement) and the 20 scored inputs, 6 of which disagree.
        #expect(reported.skipped == 0 && reported.errors == 0)
        #expect(reported.agreed == 14)
        #expect(StatusText(try device.status()).render().contains("shadow \(challenger.digest.hex.prefix(12)) running"))
        var records: [TelemetryRecord] = []
        #expect(await eventually(timeout: .seconds(20)) {
            records = ((try? LocalInferenceIntegrationTests.uploadedRecords(in: storage)) ?? []).filter { $0.kind == .shadow }
            return records.count >= 21
        })
        #expect(records.allSatisfy { $0.module == "scorer" && $0.data.field("bundle") == .string(challenger.digest.description) })

        // Removing the shadow stops its workers; the live module keeps serving.
        _ = try await device.publish(revision: 4, [try spec(shadow: nil)])
        #expect(await eventually(timeout: .seconds(30)) {
            (try? device.status().desired) == DesiredStateStatus(revision: 4, status: .applied) && (try? shadow()) == nil
        })
        #expect(await eventually { processes(workingIn: device.dataDirectory.moduleFolder(challenger.digest)).isEmpty })
        #expect(try await livePid() == pid)
        daemon.cancel()
        _ = await daemon.result
    }
}

/// The part of `GET /v1/modules/{name}/health` these tests read.
private struct ModuleShadowOnly: Decodable {
    var shadow: ShadowHealth?
}
