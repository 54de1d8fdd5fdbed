import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

/// How the daemon retries a failed desired state and what it does with the pip and venv
/// commands of an environment that hangs: a real broker, bundles over real HTTP, real
/// pip and venv processes, the daemon in this process or the real `edge-runtime`.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct ReconcilerRetryTests {
    static func settings(retry: BackoffSchedule) -> RuntimeSettings {
        RuntimeSettings(
            backoff: BackoffSchedule(initial: .milliseconds(100), maximum: .seconds(1), resetAfter: .seconds(10)),
            rollbackWindow: .milliseconds(500), stopGracePeriod: .seconds(2), applyRetry: retry)
    }

    static func daemon(_ config: DeviceConfig, retry: BackoffSchedule) -> Task<Void, any Error> {
        Task { try await EdgeRuntimeDaemon(config: config, settings: settings(retry: retry), logger: Logger(label: "runtime")).run() }
    }

    /// A scoring module whose requirements send pip to `index`, which never answers.
    static func hangingScorer(index: SilentIndex) throws -> TestBundle {
        try TestBundle.make(
            name: "echo", version: 1, files: ["score.py": Data("def init():\n    pass\n\ndef run(raw_data):\n    return 1\n".utf8)],
            command: nil, kind: .pythonScoring,
            requirements: ["--index-url http://127.0.0.1:\(index.port)/simple", "tinypkg==0.1"])
    }

    static func scorerSpec(_ device: DeviceFixture, _ bundle: TestBundle) throws -> ModuleSpec {
        try device.server.serve(bundle)
        return ModuleSpec(name: "echo", kind: .pythonScoring, bundle: bundle.reference(baseURL: device.server.baseURL))
    }

    /// The `pip install` processes building an environment in `device`'s data dir (they run
    /// in the environment's folder); venv's own pip (ensurepip) is not one.
    static func pipProcesses(_ device: DeviceFixture) -> [Int32] {
        processes(workingIn: device.dataDirectory.environments).filter { pid in
            let arguments = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            return String(decoding: arguments, as: UTF8.self).contains("-m\u{0}pip\u{0}install")
        }
    }

    @Test func aBundleWhoseDigestDoesNotMatchIsRetriedLessAndLessOftenUntilANewDesiredStateFixesIt() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        // Attempts at 0, 0.3, 1.2, 3.9 and 12 s (±20 %): four within 6 s.
        let daemon = Self.daemon(device.config, retry: BackoffSchedule(initial: .milliseconds(300), maximum: .seconds(30), multiplier: 3, jitter: 0.2))
        defer { daemon.cancel() }
        let bundle = try RuntimeIntegrationTests.service(version: 1)
        var spec = try device.module("svc", bundle)
        var damaged = bundle.data
        damaged[damaged.count / 2] ^= 0xff
        try device.server.serve(damaged, as: bundle)
        _ = try await device.publish(revision: 1, [spec])
        #expect(await eventually { (try? device.status().desired.retry?.attempt) == 1 })
        try await Task.sleep(for: .seconds(6))

        let downloads = device.server.requests.count
        #expect((3...5).contains(downloads), "\(downloads) downloads in 6 s")
        let status = try device.status()
        #expect(status.desired.status == .failed)
        #expect(status.desired.error?.contains("bundle digest is") == true, "\(status.desired.error ?? "")")
        let retry = try #require(status.desired.retry)
        #expect(retry.attempt == downloads)
        #expect(retry.step == "verifying svc (sha256:\(bundle.digest.hex.prefix(12)))")
        #expect(retry.nextAttemptAt > Date().addingTimeInterval(2))
        let text = StatusText(RuntimeStatus(
            acceptedRevision: status.acceptedRevision, appliedRevision: status.appliedRevision, desired: status.desired,
            lastRefusal: nil, modules: status.modules, daemonPid: 1)).render()
        #expect(text.contains("attempt \(retry.attempt) failed at verifying svc"), "\(text)")
        #expect(text.contains("next attempt in"), "\(text)")
        #expect(await eventually {
            let report = try? await device.healthReport()
            return report?.desired.retry?.attempt == retry.attempt && report?.desired.error?.contains("bundle digest is") == true
        })

        // A good bundle in a new desired state is applied at once, not at the next retry.
        let good = try RuntimeIntegrationTests.service(version: 2)
        spec = try device.module("svc", good)
        _ = try await device.publish(revision: 2, [spec])
        #expect(await eventually(timeout: .seconds(4)) { (try? device.status().desired) == DesiredStateStatus(revision: 2, status: .applied) })
        daemon.cancel()
        try await daemon.value
    }

    @Test func aNewerDesiredStateEndsAPipInstallThatHangs() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let index = try SilentIndex()
        let daemon = Self.daemon(device.config, retry: BackoffSchedule(initial: .seconds(60), maximum: .seconds(60)))
        defer { daemon.cancel() }
        _ = try await device.publish(revision: 1, [try Self.scorerSpec(device, try Self.hangingScorer(index: index))])
        #expect(await eventually(timeout: .seconds(60)) { !Self.pipProcesses(device).isEmpty })
        #expect(try device.status().desired.progress?.step == "installing requirements of echo:1")
        let pip = Self.pipProcesses(device)

        _ = try await device.publish(revision: 2, [try device.module("svc", try RuntimeIntegrationTests.service(version: 1))])
        #expect(await eventually(timeout: .seconds(10)) { (try? device.status().desired) == DesiredStateStatus(revision: 2, status: .applied) })
        #expect(pip.allSatisfy { !isAlive($0) })
        #expect(processes(workingIn: device.dataDirectory.environments).isEmpty)
        daemon.cancel()
        try await daemon.value
    }

    @Test func aPipInstallThatOutlastsItsTimeoutIsKilledAndReported() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let index = try SilentIndex()
        var config = device.config
        config.environments = EnvironmentSettings(pipTimeoutSeconds: 2)
        let daemon = Self.daemon(config, retry: BackoffSchedule(initial: .seconds(60), maximum: .seconds(60)))
        defer { daemon.cancel() }
        _ = try await device.publish(revision: 1, [try Self.scorerSpec(device, try Self.hangingScorer(index: index))])
        #expect(await eventually(timeout: .seconds(60)) { (try? device.status().desired.status) == .failed })
        let status = try device.status()
        #expect(status.desired.error?.contains("echo: pip install timed out after 2 s") == true, "\(status.desired.error ?? "")")
        #expect(status.desired.retry?.step == "installing requirements of echo:1")
        #expect(status.desired.retry?.attempt == 1)
        #expect(status.desired.progress == nil)
        #expect(processes(workingIn: device.dataDirectory.environments).isEmpty)
        daemon.cancel()
        try await daemon.value
    }

    /// The real `edge-runtime`: killed with SIGKILL during pip, its successor ends the
    /// leftover pip; stopped with SIGTERM during pip, it leaves none.
    @Test func noPipOutlivesTheRuntimeThatStartedIt() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let index = try SilentIndex()
        let configPath = device.directory.file("gw-001.yaml")
        try device.config.save(to: configPath)
        _ = try await device.publish(revision: 1, [try Self.scorerSpec(device, try Self.hangingScorer(index: index))])

        var runtime = try KilledRuntimeTests.start(config: configPath, log: device.directory.file("runtime-1.log"))
        var runtimes = [runtime]
        defer { runtimes.forEach { $0.stop() } }
        #expect(await eventually(timeout: .seconds(60)) { !Self.pipProcesses(device).isEmpty })
        // Until pip waits for the index, it writes to the runtime's pipe, and dies of it once the runtime is gone.
        try await Task.sleep(for: .seconds(3))
        let leftover = Self.pipProcesses(device)
        runtime.signal(SIGKILL)
        _ = try await runtime.waitForExit()
        try await Task.sleep(for: .seconds(1))
        #expect(!leftover.isEmpty && leftover.allSatisfy(isAlive), "SIGKILL leaves pip running, orphaned")

        runtime = try KilledRuntimeTests.start(config: configPath, log: device.directory.file("runtime-2.log"))
        runtimes.append(runtime)
        // Soon: an orphaned pip dies by itself at pip's first write after its 15 s read timeout.
        #expect(await eventually(timeout: .seconds(4)) { leftover.allSatisfy { !isAlive($0) } })
        #expect(await eventually(timeout: .seconds(60)) { !Self.pipProcesses(device).isEmpty })
        let status = try KilledRuntimeTests.cli(["status", "--config", configPath])
        #expect(status.contains("step: installing requirements of echo:1"), "\(status)")

        runtime.signal(SIGTERM)
        #expect(try await runtime.waitForExit() == 0)
        #expect(processes(workingIn: device.dataDirectory.environments).isEmpty)
    }

    /// The real `edge-runtime` downloading a bundle over a slow link: `edge-runtime status`
    /// shows the download's step and percentage while it runs.
    @Test func statusShowsTheDownloadsPercentageWhileItRuns() async throws {
        let device = try await DeviceFixture(bytesPerSecond: 400_000)
        defer { device.stop() }
        let configPath = device.directory.file("gw-001.yaml")
        try device.config.save(to: configPath)
        let payload = Data((0..<2_000_000).map { _ in UInt8.random(in: 0...255) })
        let bundle = try TestBundle.make(
            name: "svc", files: ["run.sh": Data("trap 'exit 0' TERM\nwhile true; do sleep 0.1; done\n".utf8), "weights.bin": payload],
            compress: false)
        _ = try await device.publish(revision: 1, [try device.module("svc", bundle)])
        let runtime = try KilledRuntimeTests.start(config: configPath, log: device.directory.file("runtime.log"))
        defer { runtime.stop() }

        var seen: [Int] = []
        var text = ""
        let midway = await eventually(timeout: .seconds(30)) {
            guard let json = try? KilledRuntimeTests.cli(["status", "--json", "--config", configPath]),
                let status = try? FleetJSON.decode(RuntimeStatus.self, from: Data(json.utf8)),
                let progress = status.desired.progress,
                progress.step == "downloading svc (sha256:\(bundle.digest.hex.prefix(12)))", let percent = progress.percent
            else { return false }
            seen.append(percent)
            text = (try? KilledRuntimeTests.cli(["status", "--config", configPath])) ?? ""
            return seen.contains { (20..<100).contains($0) } && seen.count >= 2
        }
        #expect(midway, "percentages seen: \(seen)")
        #expect(seen == seen.sorted(), "\(seen)")
        #expect(text.contains("step: downloading svc (sha256:\(bundle.digest.hex.prefix(12)))"), "\(text)")
        #expect(await eventually(timeout: .seconds(30)) { (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied) })
    }
}

/// A package index on a free loopback port that takes connections and never answers,
/// so a pip install from it hangs (offline, and until pip's own long timeouts).
final class SilentIndex: @unchecked Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let (descriptor, port) = try Fixtures.boundLoopbackSocket()
        guard listen(descriptor, 64) == 0 else {
            close(descriptor)
            throw FixtureError.noFreePort
        }
        self.descriptor = descriptor
        self.port = port
    }

    deinit { close(descriptor) }
}
