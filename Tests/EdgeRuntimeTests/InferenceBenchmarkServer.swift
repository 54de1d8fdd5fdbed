import EdgeRuntime
import FleetCore
import Foundation
import Logging
import Testing

/// Serves a module through `ScoringHost` + `LocalAPIServer` for
/// `benchmarks/inference/run.sh`, which builds the tests in release mode and drives
/// this with wrk. With `FLEET_BENCHMARK_COLLECT=1` every request is recorded (inputs
/// and outputs) through the daemon's `InferenceRecorder` into a real `TelemetryBuffer`,
/// as the daemon does for `sampleRate: 1`. With `FLEET_BENCHMARK_SHADOW=RATE` the same
/// module also runs as the shadow (its own workers, as many as the live one) and that
/// share of the requests is mirrored to it, as the daemon does for `shadow: {sampleRate}`;
/// with `FLEET_BENCHMARK_SHADOW_UNSTARTED=1` the shadow is never started, so every
/// sampled request is only decided and counted `skipped`: the cost of the decision alone.
/// With `FLEET_BENCHMARK_KIND=onnx` the module's `model/iris.onnx` is served as a no-code
/// module (onnxruntime in the scoring host, no `score.py`).
/// Not part of the normal suite: it only runs when the script sets `FLEET_BENCHMARK_MODULE`.
@Suite(.enabled(if: BenchmarkSettings.current != nil, "benchmark server; run benchmarks/inference/run.sh"))
struct InferenceBenchmarkServer {
    @Test func serveUntilThePortFileIsRemoved() async throws {
        let settings = try #require(BenchmarkSettings.current)
        let buffer = try settings.collect.map { folder in
            try TelemetryBuffer(path: folder.appending(path: "telemetry.sqlite").path, deviceId: "bench")
        }
        let recorder = buffer.map { InferenceRecorder(buffer: $0, logger: Logger(label: "bench")) }
        let host = ScoringHost(
            configuration: ScoringConfiguration(
                module: "iris", moduleDirectory: settings.module, entry: settings.kind == .onnx ? "model/iris.onnx" : "score.py",
                kind: settings.kind, version: 1, python: InferenceFixtures.python,
                hostScript: ScoringHostScript.bundled,
                workers: settings.workers),
            onRequest: recorder?.hook(
                digest: ContentDigest(of: Data("bench".utf8)),
                settings: TelemetrySettings(sampleRate: 1, collectInputs: true, collectOutputs: true)))
        try await host.start()
        let modules = LocalModules()
        modules.set(host)
        let shadow = settings.shadowSampleRate.map { rate in
            ShadowEvaluator(
                module: "iris", liveDigest: ContentDigest(of: Data("bench".utf8)),
                digest: ContentDigest(of: Data("bench-shadow".utf8)), sampleRate: rate,
                configuration: ScoringConfiguration(
                    module: ShadowEvaluator.hostName(of: "iris"), moduleDirectory: settings.module, entry: "score.py",
                    python: InferenceFixtures.python, hostScript: ScoringHostScript.bundled, workers: settings.workers,
                    niceness: settings.shadowNiceness))
        }
        if let shadow {
            if !settings.shadowUnstarted { try await shadow.start() }
            modules.setShadow(shadow)
        }
        let server = LocalAPIServer(
            configuration: LocalAPIConfiguration(port: 0), modules: modules,
            onListening: { port in try? String(port).write(to: settings.portFile, atomically: true, encoding: .utf8) })
        let serving = Task { try await server.run() }
        let deadline = ContinuousClock.now + .seconds(900)
        try await Task.sleep(for: .milliseconds(500))
        while FileManager.default.fileExists(atPath: settings.portFile.path), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        serving.cancel()
        _ = await serving.result
        await host.stop()
        if let health = shadow?.health {
            await shadow?.stop()
            print(
                "benchmark: shadow \(health.samples) samples, \(health.skipped) skipped, \(health.errors) errors, "
                    + "agreement \(health.agreement ?? 0), p50 \(health.p50Ms) ms, p99 \(health.p99Ms) ms")
        }
        await recorder?.flush()
        if let buffer {
            print("benchmark: \(try buffer.stats().buffered) inference records buffered")
        }
    }
}

struct BenchmarkSettings {
    var module: URL
    var portFile: URL
    var workers: Int
    /// Where the telemetry buffer goes when collection is on.
    var collect: URL?
    /// The share of requests mirrored to a shadow; nil for none.
    var shadowSampleRate: Double?
    /// The shadow workers' nice value (`FLEET_BENCHMARK_SHADOW_NICE`), the daemon's by default.
    var shadowNiceness: Int32
    var shadowUnstarted: Bool
    /// `python-scoring` (the `score.py`), or `onnx` for the no-code module.
    var kind: ModuleKind

    static var current: BenchmarkSettings? {
        let environment = ProcessInfo.processInfo.environment
        guard let module = environment["FLEET_BENCHMARK_MODULE"], let portFile = environment["FLEET_BENCHMARK_PORT_FILE"]
        else { return nil }
        return BenchmarkSettings(
            module: URL(fileURLWithPath: module), portFile: URL(fileURLWithPath: portFile),
            workers: Int(environment["FLEET_BENCHMARK_WORKERS"] ?? "") ?? 2,
            collect: environment["FLEET_BENCHMARK_COLLECT"].map { URL(fileURLWithPath: $0) },
            shadowSampleRate: environment["FLEET_BENCHMARK_SHADOW"].flatMap(Double.init),
            shadowNiceness: environment["FLEET_BENCHMARK_SHADOW_NICE"].flatMap { Int32($0) }
                ?? ScoringConfiguration.backgroundNiceness,
            shadowUnstarted: environment["FLEET_BENCHMARK_SHADOW_UNSTARTED"] == "1",
            kind: environment["FLEET_BENCHMARK_KIND"].flatMap(ModuleKind.init) ?? .pythonScoring)
    }
}
