import EdgeRuntime
import Foundation
import Testing

/// Serves a module through `ScoringHost` + `LocalAPIServer` for
/// `benchmarks/inference/run.sh`, which builds the tests in release mode and drives
/// this with wrk. Not part of the normal suite: it only runs when the script sets
/// `FLEET_BENCHMARK_MODULE`.
@Suite(.enabled(if: BenchmarkSettings.current != nil, "benchmark server; run benchmarks/inference/run.sh"))
struct InferenceBenchmarkServer {
    @Test func serveUntilThePortFileIsRemoved() async throws {
        let settings = try #require(BenchmarkSettings.current)
        let host = ScoringHost(
            configuration: ScoringConfiguration(
                module: "iris", moduleDirectory: settings.module, entry: "score.py",
                python: InferenceFixtures.python,
                hostScript: ScoringHostScript.bundled,
                workers: settings.workers))
        try await host.start()
        let modules = LocalModules()
        modules.set(host)
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
    }
}

struct BenchmarkSettings {
    var module: URL
    var portFile: URL
    var workers: Int

    static var current: BenchmarkSettings? {
        let environment = ProcessInfo.processInfo.environment
        guard let module = environment["FLEET_BENCHMARK_MODULE"], let portFile = environment["FLEET_BENCHMARK_PORT_FILE"]
        else { return nil }
        return BenchmarkSettings(
            module: URL(fileURLWithPath: module), portFile: URL(fileURLWithPath: portFile),
            workers: Int(environment["FLEET_BENCHMARK_WORKERS"] ?? "") ?? 2)
    }
}
