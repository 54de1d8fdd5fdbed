import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// The real `edge-runtime` executable, killed with SIGKILL and started again.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct KilledRuntimeTests {
    /// `.build/debug/edge-runtime`, next to the test bundle.
    static var executable: URL { URL(fileURLWithPath: Fixtures.builtExecutable("edge-runtime")) }

    static func start(config: String, log: String) throws -> ChildProcess {
        try ChildProcess(
            executable.path, ["run", "--config", config, "--rollback-window", "0.5", "--stop-grace", "2"], outputPath: log)
    }

    static func cli(_ arguments: [String]) throws -> String {
        try Fixtures.run(executable.path, arguments)
    }

    @Test func restartAfterSIGKILLEndsLeftoversAndStartsModulesWithoutTheBroker() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the package first: swift build")
        let device = try await DeviceFixture()
        defer { device.stop() }
        let configPath = device.directory.file("gw-001.yaml")
        var config = device.config
        // The test's bundle server takes any token; `check` needs one to try.
        config.hub.token = "gw-001:test"
        try config.save(to: configPath)
        let bundle = try TestBundle.shellModule(
            name: "svc", version: 1, script: "echo svc started\ntrap 'exit 0' TERM\nsleep 300 &\nwhile true; do sleep 0.1; done\n")
        _ = try await device.publish(revision: 1, [try device.module("svc", bundle)])

        var runtime = try Self.start(config: configPath, log: device.directory.file("runtime-1.log"))
        var runtimes = [runtime]
        defer { runtimes.forEach { $0.stop() } }
        #expect(await eventually { (try? device.status().modules.first?.status) == .running })
        let firstPid = try #require(try device.status().modules.first?.pid)
        let healthy = try Self.cli(["check", "--config", configPath])
        #expect(healthy.contains("[pass] broker reachable and authorised"))
        #expect(healthy.contains("[pass] bundle download authorised"))
        #expect(!healthy.contains("FAIL"), "\(healthy)")
        #expect(try Self.cli(["logs", "svc", "--tail", "1", "--config", configPath]) == "svc started\n")
        #expect(await eventually { processes(workingIn: device.dataDirectory.modules).count >= 2 })

        // SIGKILL leaves the module's processes behind, orphaned.
        runtime.signal(SIGKILL)
        _ = try await runtime.waitForExit()
        #expect(isAlive(firstPid))

        // Started again with the broker down: leftovers are ended, the module runs once.
        device.broker.kill()
        runtime = try Self.start(config: configPath, log: device.directory.file("runtime-2.log"))
        runtimes.append(runtime)
        #expect(await eventually {
            guard let module = try? device.status().modules.first, let pid = module.pid else { return false }
            return pid != firstPid && module.status == .running
        })
        #expect(!isAlive(firstPid))
        #expect(await eventually { processes(workingIn: device.dataDirectory.modules).count >= 2 })
        let groups = Set(processes(workingIn: device.dataDirectory.modules).compactMap { ProcessTable.entry(pid: $0)?.processGroup })
        #expect(groups.count == 1)

        // The device CLI reads the same state.
        let json = try Self.cli(["status", "--json", "--config", configPath])
        let status = try FleetJSON.decode(RuntimeStatus.self, from: Data(json.utf8))
        #expect(status.desired == DesiredStateStatus(revision: 1, status: .applied))
        #expect(status.modules.map(\.name) == ["svc"])
        let check = try? Self.cli(["check", "--config", configPath])
        #expect(check == nil, "check must fail while the broker is down")

        // SIGTERM stops the runtime and its modules.
        runtime.signal(SIGTERM)
        #expect(try await runtime.waitForExit() == 0)
        #expect(processes(workingIn: device.dataDirectory.modules).isEmpty)
    }

    @Test func scoringWorkersDoNotOutliveAKilledRuntime() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        var config = device.config
        config.localAPI = LocalAPISettings(port: try Fixtures.freePort())
        let configPath = device.directory.file("gw-001.yaml")
        try config.save(to: configPath)
        let bundle = try LocalInferenceIntegrationTests.echoBundle(version: 1)
        try device.server.serve(bundle)
        let spec = ModuleSpec(
            name: "echo", kind: .pythonScoring, bundle: bundle.reference(baseURL: device.server.baseURL), workers: 2)
        _ = try await device.publish(revision: 1, [spec])

        let runtime = try Self.start(config: configPath, log: device.directory.file("runtime.log"))
        defer { runtime.stop() }
        #expect(await eventually(timeout: .seconds(60)) { (try? device.status().modules.first?.status) == .running })
        #expect(processes(workingIn: device.dataDirectory.modules).count == 2)

        // The workers' channel closes with the runtime, and they exit on their own.
        runtime.signal(SIGKILL)
        _ = try await runtime.waitForExit()
        #expect(await eventually(timeout: .seconds(10)) { processes(workingIn: device.dataDirectory.modules).isEmpty })
    }

    @Test func busyAndHungScoringWorkersOfAKilledRuntimeAreEndedByTheNextOne() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        var config = device.config
        config.localAPI = LocalAPISettings(port: try Fixtures.freePort())
        let configPath = device.directory.file("gw-001.yaml")
        try config.save(to: configPath)
        // run() marks its pid in the request's folder and sleeps; a hung one ignores SIGTERM.
        let script = """
            import json, os, signal, time

            def init():
                pass

            def run(raw_data):
                request = json.loads(raw_data)
                if request.get("hang"):
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
                open(os.path.join(request["directory"], str(os.getpid())), "w").close()
                time.sleep(600)
            """
        let bundle = try TestBundle.make(
            name: "sleepy", files: ["score.py": Data(script.utf8)], command: nil, kind: .pythonScoring)
        try device.server.serve(bundle)
        let spec = ModuleSpec(
            name: "sleepy", kind: .pythonScoring, bundle: bundle.reference(baseURL: device.server.baseURL), workers: 2)
        _ = try await device.publish(revision: 1, [spec])

        var runtime = try Self.start(config: configPath, log: device.directory.file("runtime-1.log"))
        var runtimes = [runtime]
        defer { runtimes.forEach { $0.stop() } }
        #expect(await eventually(timeout: .seconds(60)) { (try? device.status().modules.first?.status) == .running })
        let marks = try TemporaryDirectory(prefix: "busy-workers")
        let api = APIClient(port: try #require(config.localAPI?.port))
        let requests = [false, true].map { hang in
            Task { try? await api.post("/v1/modules/sleepy/score", #"{"directory": "\#(marks.url.path)", "hang": \#(hang)}"#) }
        }
        defer { requests.forEach { $0.cancel() } }
        var workers: [Int32] = []
        #expect(await eventually(timeout: .seconds(20)) {
            workers = ((try? FileManager.default.contentsOfDirectory(atPath: marks.url.path)) ?? []).compactMap(Int32.init)
            return workers.count == 2
        })
        // Whatever the test leaves behind, it ends by pid.
        defer { for pid in workers where isAlive(pid) { kill(pid, SIGKILL) } }

        runtime.signal(SIGKILL)
        _ = try await runtime.waitForExit()
        try await Task.sleep(for: .milliseconds(500))
        #expect(workers.allSatisfy(isAlive), "a busy worker outlives its runtime until the next one ends it")

        runtime = try Self.start(config: configPath, log: device.directory.file("runtime-2.log"))
        runtimes.append(runtime)
        #expect(await eventually(timeout: .seconds(20)) { workers.allSatisfy { !isAlive($0) } })
        #expect(await eventually(timeout: .seconds(60)) { (try? device.status().modules.first?.status) == .running })
        // The new runtime records its own two workers.
        #expect(await eventually {
            let recorded = (try? device.status().modules.first?.scoringWorkers?.map(\.pid)) ?? []
            return recorded.count == 2 && recorded.allSatisfy { !workers.contains($0) }
        })
        runtime.signal(SIGTERM)
        #expect(try await runtime.waitForExit() == 0)
    }
}
