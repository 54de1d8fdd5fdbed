import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A scoring module switching versions under load, through the daemon: real broker,
/// bundles over real HTTP, real venvs and Python workers, the real local API. Clients
/// score without pause over `/v1` and `/v2` through the whole switch and count every
/// answer that is not a 200.
@Suite(
    .serialized,
    .enabled(if: Fixtures.shouldRun(needing: "mosquitto") && Fixtures.shouldRun(needing: "python3"), "needs mosquitto and python3"))
struct VersionSwitchTests {
    /// A scorer answering its version, whose `init()` takes a second (so a switch is
    /// long enough to meet many requests); `failInit` makes `init()` raise, `crash` makes
    /// each worker exit 0.3 s after its `init()` returned.
    static func bundle(version: Int, failInit: Bool = false, crash: Bool = false) throws -> TestBundle {
        let script = """
            import os, threading, time

            def init():
                time.sleep(1.0)
                if \(failInit ? "True" : "False"):
                    raise RuntimeError("model v\(version) is corrupt")
                if \(crash ? "True" : "False"):
                    threading.Thread(target=lambda: (time.sleep(0.3), os._exit(3)), daemon=True).start()

            def run(raw_data):
                time.sleep(0.005)
                return {"version": \(version)}
            """
        return try TestBundle.make(
            name: "echo", version: version, files: ["score.py": Data(script.utf8)], command: nil, kind: .pythonScoring)
    }

    /// Clients that score in a loop, each request after the previous answer, until stopped.
    final class Load: Sendable {
        struct Answer: Sendable {
            var client: Int
            var status: Int
            var version: Int?
            var body: String
        }

        /// The answers so far, and whether the clients go on.
        private final class Record: @unchecked Sendable {
            let lock = NSLock()
            var answers: [Answer] = []
            var running = true
        }

        private let record = Record()
        private let tasks: [Task<Void, Never>]

        /// `v1Clients` post to `/v1/modules/echo/score`, `v2Clients` to `/v2/models/echo/infer`.
        init(port: Int, v1Clients: Int = 2, v2Clients: Int = 1) {
            let api = APIClient(port: port)
            let v2Body = #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}"#
            let record = record
            tasks = (0..<(v1Clients + v2Clients)).map { client in
                let v2 = client >= v1Clients
                return Task {
                    while record.lock.withLock({ record.running }) {
                        let answer: Answer
                        do {
                            let (status, body) =
                                v2
                                ? try await api.post("/v2/models/echo/infer", v2Body)
                                : try await api.post("/v1/modules/echo/score", "{}")
                            answer = Answer(
                                client: client, status: status, version: status == 200 ? Self.version(in: body, v2: v2) : nil,
                                body: String(decoding: body, as: UTF8.self))
                        } catch {
                            answer = Answer(client: client, status: 0, version: nil, body: "\(error)")
                        }
                        record.lock.withLock { record.answers.append(answer) }
                    }
                }
            }
        }

        private static func version(in body: Data, v2: Bool) -> Int? {
            guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return nil }
            if !v2 { return object["version"] as? Int }
            let outputs = object["outputs"] as? [[String: Any]]
            return (outputs?.first?["data"] as? [Int])?.first
        }

        var all: [Answer] { record.lock.withLock { record.answers } }
        var failures: [Answer] { all.filter { $0.status != 200 } }

        func count(version: Int) -> Int { all.filter { $0.version == version }.count }

        func stop() async {
            record.lock.withLock { record.running = false }
            for task in tasks { await task.value }
        }

        /// A summary for a failed expectation: how many answers, and the first failures.
        var summary: String {
            let failed = failures
            return "\(all.count) answers, \(failed.count) failed: "
                + failed.prefix(5).map { "\($0.status) \($0.body.prefix(160))" }.joined(separator: " | ")
        }
    }

    struct Running {
        let device: DeviceFixture
        let daemon: Task<Void, any Error>
        let port: Int

        func spec(_ bundle: TestBundle) throws -> ModuleSpec {
            try device.server.serve(bundle)
            return ModuleSpec(
                name: "echo", kind: .pythonScoring, bundle: bundle.reference(baseURL: device.server.baseURL), workers: 2)
        }

        func stop() async {
            daemon.cancel()
            _ = await daemon.result
            device.stop()
        }
    }

    /// The daemon serving version 1 of the echo scorer.
    static func runningVersion1(settings: RuntimeSettings = RuntimeIntegrationTests.settings) async throws -> (Running, TestBundle) {
        let device = try await DeviceFixture()
        let port = try #require(device.config.localAPI?.port)
        let daemon = Task {
            try await EdgeRuntimeDaemon(config: device.config, settings: settings, logger: Logger(label: "runtime")).run()
        }
        let running = Running(device: device, daemon: daemon, port: port)
        let v1 = try bundle(version: 1)
        _ = try await device.publish(revision: 1, [try running.spec(v1)])
        #expect(await eventually(timeout: .seconds(60)) {
            (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied)
        })
        return (running, v1)
    }

    @Test func aGoodSwitchLosesNoRequestAndTheAnswersChangeToTheNewVersion() async throws {
        let (running, _) = try await Self.runningVersion1()
        let load = Load(port: running.port)
        #expect(await eventually { load.count(version: 1) >= 20 })

        _ = try await running.device.publish(revision: 2, [try running.spec(try Self.bundle(version: 2))])
        #expect(await eventually(timeout: .seconds(60)) {
            (try? running.device.status().desired) == DesiredStateStatus(revision: 2, status: .applied)
        })
        #expect(await eventually { load.count(version: 2) >= 50 })
        await load.stop()
        await running.stop()

        #expect(load.failures.count == 0, "\(load.summary)")
        // Each client sees version 1, then version 2, never version 1 again.
        for client in 0..<3 {
            let versions = load.all.filter { $0.client == client }.compactMap(\.version)
            #expect(versions.first == 1 && versions.last == 2 && versions == versions.sorted(), "client \(client)")
        }
    }

    @Test func theOldVersionsWorkersStopOnceTheNewOnePassedItsRollbackWindow() async throws {
        let (running, v1) = try await Self.runningVersion1()
        let oldWorkers = processes(workingIn: running.device.dataDirectory.moduleFolder(v1.digest))
        #expect(oldWorkers.count == 2)
        let v2 = try Self.bundle(version: 2)
        _ = try await running.device.publish(revision: 2, [try running.spec(v2)])
        #expect(await eventually(timeout: .seconds(60)) {
            (try? running.device.status().desired) == DesiredStateStatus(revision: 2, status: .applied)
        })
        #expect(await eventually { oldWorkers.allSatisfy { !isAlive($0) } })
        // The state store records exactly the workers that serve now.
        let serving = Set(processes(workingIn: running.device.dataDirectory.moduleFolder(v2.digest)))
        #expect(serving.count == 2)
        #expect(await eventually {
            Set((try? running.device.status().modules.first?.scoringWorkers?.map(\.pid)) ?? []) == serving
        })
        await running.stop()
    }

    @Test func theOldVersionStopsAfterTheWindowAlsoWhenANewerDesiredStateInterruptedTheWatch() async throws {
        var settings = RuntimeIntegrationTests.settings
        settings.rollbackWindow = .seconds(4)
        let (running, v1) = try await Self.runningVersion1(settings: settings)
        let oldWorkers = processes(workingIn: running.device.dataDirectory.moduleFolder(v1.digest))
        #expect(oldWorkers.count == 2)
        let v2 = try running.spec(try Self.bundle(version: 2))
        _ = try await running.device.publish(revision: 2, [v2])
        let api = APIClient(port: running.port)
        #expect(await eventually(timeout: .seconds(60)) {
            (try? await api.post("/v1/modules/echo/score", "{}").1) == Data(#"{"version": 2}"#.utf8)
        })
        // The same modules again, within version 2's rollback window: its watch is cut short.
        _ = try await running.device.publish(revision: 3, [v2])
        #expect(await eventually(timeout: .seconds(30)) {
            (try? running.device.status().desired) == DesiredStateStatus(revision: 3, status: .applied)
        })
        #expect(await eventually(timeout: .seconds(15)) { oldWorkers.allSatisfy { !isAlive($0) } })
        await running.stop()
    }

    @Test func aNewVersionWhoseInitRaisesLeavesTheOldOneServingThroughTheRollback() async throws {
        let (running, _) = try await Self.runningVersion1()
        let load = Load(port: running.port)
        #expect(await eventually { load.count(version: 1) >= 20 })

        _ = try await running.device.publish(revision: 2, [try running.spec(try Self.bundle(version: 2, failInit: true))])
        #expect(await eventually(timeout: .seconds(60)) { (try? running.device.status().desired.status) == .rolledBack })
        let answered = load.all.count
        #expect(await eventually { load.all.count >= answered + 50 })
        await load.stop()
        let status = try running.device.status()
        await running.stop()

        #expect(status.desired.error?.contains("model v2 is corrupt") == true, "\(status.desired.error ?? "")")
        #expect(load.failures.count == 0, "\(load.summary)")
        #expect(load.all.allSatisfy { $0.version == 1 })
    }

    @Test func aNewVersionThatCrashesAfterItsStartIsRolledBackWithoutALostRequest() async throws {
        let (running, v1) = try await Self.runningVersion1()
        let load = Load(port: running.port)
        #expect(await eventually { load.count(version: 1) >= 20 })

        let v2 = try Self.bundle(version: 2, crash: true)
        _ = try await running.device.publish(revision: 2, [try running.spec(v2)])
        #expect(await eventually(timeout: .seconds(60)) { (try? running.device.status().desired.status) == .rolledBack })
        let answered = load.all.count
        #expect(await eventually { load.all.count >= answered + 50 })
        await load.stop()
        let status = try running.device.status()
        // The crashed version's workers (and any replacement it was starting) stop.
        #expect(await eventually { processes(workingIn: running.device.dataDirectory.moduleFolder(v2.digest)).isEmpty })
        await running.stop()

        #expect(status.desired.error?.contains("crashed") == true, "\(status.desired.error ?? "")")
        #expect(status.modules.first?.bundleDigest == v1.digest)
        #expect(load.failures.count == 0, "\(load.summary)")
        #expect(load.all.suffix(20).allSatisfy { $0.version == 1 })
    }

    @Test func aModuleThatIsStartingAnswers503NotFound404() async throws {
        let device = try await DeviceFixture()
        let port = try #require(device.config.localAPI?.port)
        let daemon = Task {
            try await EdgeRuntimeDaemon(
                config: device.config, settings: RuntimeIntegrationTests.settings, logger: Logger(label: "runtime")
            ).run()
        }
        let running = Running(device: device, daemon: daemon, port: port)
        let api = APIClient(port: port)
        #expect(await eventually { (try? await api.get("/v2/health/live").0) == 200 })
        _ = try await device.publish(revision: 1, [try running.spec(try Self.bundle(version: 1))])
        var seen: [(Int, String)] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let (status, body) = try await api.post("/v1/modules/echo/score", "{}")
            seen.append((status, String(decoding: body, as: UTF8.self)))
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        await running.stop()
        #expect(seen.last?.0 == 200)
        // Before the module is known it is 404; from its start until it is ready, 503.
        let beforeReady = seen.dropLast().map(\.0)
        #expect(beforeReady.contains(503), "\(seen.suffix(3))")
        #expect(beforeReady.drop { $0 == 404 }.allSatisfy { $0 == 503 }, "\(beforeReady)")
        #expect(seen.dropLast().last.map { $0.1.contains("is not ready") } == true)
    }
}
