import EdgeRuntime
import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Staged rollouts on real devices: the real `fleethub` CLI and `fleethub serve`, a
/// real mosquitto, and five real `edge-runtime` daemons that download, start, roll
/// back and serve the modules. A `DesiredStateRecorder` proves which devices were
/// ever sent a version.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct RuntimeRolloutTests {
    /// The hub workspace, broker, `fleethub serve` and the devices; `stop()` ends them.
    final class RealFleet: @unchecked Sendable {
        let directory: TemporaryDirectory
        let broker: MosquittoBroker
        let workspacePath: String
        let httpPort: Int
        let ids: [String]
        var apiPorts: [String: Int] = [:]
        var runtimes: [ChildProcess] = []
        var serve: ChildProcess?
        let recorder: DesiredStateRecorder

        init(devices count: Int) async throws {
            directory = try TemporaryDirectory(prefix: "runtime-rollout")
            workspacePath = directory.file("hub")
            httpPort = try Fixtures.freePort()
            broker = try await MosquittoBroker.start()
            ids = (1...count).map { "gw-\($0)" }
            _ = try Self.run(["init", "--insecure", "--broker", broker.url, "--public-url", "http://127.0.0.1:\(httpPort)", "--insecure-http"], workspace: workspacePath)
            let key = try Workspace.open(at: URL(fileURLWithPath: workspacePath)).signingKey.publicKey
            recorder = try await DesiredStateRecorder(brokerPort: broker.port, hubKey: key)
            for id in ids {
                let config = directory.file("\(id).yaml")
                let port = try Fixtures.freePort()
                apiPorts[id] = port
                _ = try hub("device", "add", id, "--tag", "site=test", "--out", config, "--local-api", "127.0.0.1:\(port)")
                var settings = try DeviceConfig.load(from: config)
                settings.dataDir = directory.file("\(id)-data")
                settings.reportIntervalSeconds = 1
                try settings.save(to: config)
            }
            serve = try ChildProcess(
                Fixtures.builtExecutable("fleethub"), ["serve", "--http", "127.0.0.1:\(httpPort)", "--workspace", workspacePath],
                outputPath: directory.file("serve.log"))
            for id in ids {
                runtimes.append(try ChildProcess(
                    Fixtures.builtExecutable("edge-runtime"), ["run", "--config", directory.file("\(id).yaml"), "--rollback-window", "1"],
                    outputPath: directory.file("\(id).log")))
            }
            #expect(await eventually { Fixtures.isListening(port: self.httpPort) })
        }

        static func run(_ arguments: [String], workspace: String) throws -> String {
            try Fixtures.run(Fixtures.builtExecutable("fleethub"), arguments + ["--workspace", workspace])
        }

        @discardableResult
        func hub(_ arguments: String...) throws -> String { try Self.run(arguments, workspace: workspacePath) }

        func workspace() throws -> Workspace { try Workspace.open(at: URL(fileURLWithPath: workspacePath)) }

        /// Packages a `process` module whose script is `script`.
        func packageProcess(_ name: String, script: String) throws -> ContentDigest {
            let source = directory.file("\(name)-\(UUID().uuidString.prefix(4))")
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            try script.write(toFile: "\(source)/run.sh", atomically: true, encoding: .utf8)
            let output = try hub("module", "package", "--name", name, "--kind", "process", "--command", "/bin/sh run.sh", "--source", source)
            return try #require(ContentDigest(String(output.split(separator: " ")[1]).trimmingCharacters(in: .whitespacesAndNewlines)))
        }

        /// Packages a scoring module around a small model file with `score` as its score.py.
        func packageScorer(_ name: String, score: String) throws -> ContentDigest {
            let source = directory.file("\(name)-\(UUID().uuidString.prefix(4))")
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            try score.write(toFile: "\(source)/score.py", atomically: true, encoding: .utf8)
            try "weights".write(toFile: directory.file("model.bin"), atomically: true, encoding: .utf8)
            let model = try hub("model", "register", "--name", "\(name)-model", "--path", directory.file("model.bin"))
            let output = try hub(
                "module", "package", "--name", name, "--model", model.trimmingCharacters(in: .whitespacesAndNewlines),
                "--entry", "score.py", "--source", source)
            return try #require(ContentDigest(String(output.split(separator: " ")[1]).trimmingCharacters(in: .whitespacesAndNewlines)))
        }

        /// Deploys `fleet-app` with module `app` running `module` (and `shadow` beside it).
        func deploy(_ module: String, shadow: String? = nil, rollout: String) throws {
            let manifest = directory.file("deployment-\(UUID().uuidString.prefix(4)).yaml")
            try """
                name: fleet-app
                priority: 1
                target: site=test
                modules:
                  - name: app
                    bundle: \(module)
                    restartPolicy: always
                \(shadow.map { "    shadow: {bundle: \($0), sampleRate: 1.0}" } ?? "")
                \(rollout)
                """.write(toFile: manifest, atomically: true, encoding: .utf8)
            try hub("deploy", manifest)
        }

        /// What each device's own state database says it runs.
        func running(_ id: String) -> (status: DesiredStateStatus?, digest: ContentDigest?, running: Bool) {
            let data = DataDirectory(config: (try? DeviceConfig.load(from: directory.file("\(id).yaml")))!)
            guard let status = try? StateStore(url: data.database).status() else { return (nil, nil, false) }
            let module = status.modules.first { $0.name == "app" }
            return (status.desired, module?.bundleDigest, module?.status == .running)
        }

        func allRun(_ digest: ContentDigest) -> Bool {
            ids.allSatisfy { id in
                let state = running(id)
                return state.digest == digest && state.running && state.status?.status == .applied
            }
        }

        func rollout() throws -> Rollout { try RolloutStore(workspace: workspace()).latest(deployment: "fleet-app") }

        func waitFor(_ state: Rollout.State, timeout: Duration = .seconds(90)) async throws -> Rollout {
            let reached = try await eventually(timeout: timeout) { try rollout().state == state }
            let current = try rollout()
            #expect(reached, "rollout is \(current.state.rawValue), not \(state.rawValue): \(current.events.map(\.message)); serve log: \(log("serve"))")
            return current
        }

        func log(_ name: String) -> String { (try? String(contentsOfFile: directory.file("\(name).log"), encoding: .utf8)) ?? "" }

        /// Sends `count` score requests to device `id`'s local API, `pause` apart (so a
        /// shadow, which skips requests while it is busy, can compare each); returns how
        /// many answered 200.
        func score(_ id: String, count: Int, pause: Duration = .zero) async throws -> Int {
            var ok = 0
            for index in 0..<count {
                if pause > .zero { try await Task.sleep(for: pause) }
                var request = URLRequest(url: URL(string: "http://127.0.0.1:\(apiPorts[id]!)/v1/modules/app/score")!)
                request.httpMethod = "POST"
                request.httpBody = Data(#"{"n": \#(index)}"#.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                let (_, response) = try await URLSession.shared.data(for: request)
                if (response as? HTTPURLResponse)?.statusCode == 200 { ok += 1 }
            }
            return ok
        }

        func stop() {
            for runtime in runtimes { runtime.stop() }
            serve?.stop()
            recorder.stop()
            broker.kill()
        }
    }

    @Test func aGoodVersionCompletesAndACrashingOneHaltsOnItsCanaryAndIsReverted() async throws {
        let fleet = try await RealFleet(devices: 5)
        defer { fleet.stop() }
        let v1 = try fleet.packageProcess("app", script: "echo v1\nwhile true; do sleep 0.2; done\n")
        let v2 = try fleet.packageProcess("app", script: "echo v2\nwhile true; do sleep 0.2; done\n")
        let crash = try fleet.packageProcess("app", script: "echo crash\nexit 1\n")
        try fleet.deploy("app:1", rollout: "")
        #expect(await eventually(timeout: .seconds(60)) { fleet.allRun(v1) }, "\(fleet.log("gw-1"))")

        let waves = "rollout:\n  waves: [1, 2, 100%]\n  soakSeconds: 1"
        try fleet.deploy("app:2", rollout: waves)
        _ = try await fleet.waitFor(.completed)
        #expect(await eventually { fleet.allRun(v2) })

        try fleet.deploy("app:3", rollout: waves)
        let halted = try await fleet.waitFor(.halted)
        let canary = halted.devices[0]
        #expect(halted.wave == 0)
        #expect(halted.reason?.contains("\(canary) rolled-back") == true)
        #expect(fleet.running(canary).status?.status == .rolledBack)
        #expect(fleet.running(canary).digest == v2)
        try await Task.sleep(for: .seconds(2))
        #expect(fleet.recorder.devices(thatReceived: crash) == [canary])
        let others = fleet.ids.filter { $0 != canary }
        #expect(others.allSatisfy { fleet.running($0).digest == v2 && fleet.running($0).running })

        // The way out, then the same bad version with onAbort: revert.
        try fleet.hub("deployment", "rollback", "fleet-app", "--to", "2")
        #expect(await eventually { fleet.allRun(v2) })
        try fleet.deploy("app:3", rollout: waves + "\n  onAbort: revert")
        let reverted = try await fleet.waitFor(.halted)
        #expect(reverted.events.last?.message.contains("reverted 1 device(s) to version 4") == true)
        let desired = try #require(try DeviceRegistry(workspace: fleet.workspace()).desiredState(id: reverted.devices[0]))
        #expect(desired.modules.first?.bundle.digest == v2)
        #expect(await eventually { fleet.allRun(v2) })
        #expect(reverted.devices[0] == canary)
        #expect(fleet.recorder.devices(thatReceived: crash) == [canary])
    }

    @Test(.enabled(if: Fixtures.shouldRun(needing: "python3")))
    func aVersionThatAnswersWithManyMoreErrorsHaltsOnTheErrorRate() async throws {
        let fleet = try await RealFleet(devices: 2)
        defer { fleet.stop() }
        _ = try fleet.packageScorer("app", score: "import json\n\ndef init():\n    pass\n\ndef run(raw_data):\n    return json.loads(raw_data)\n")
        let bad = try fleet.packageScorer(
            "app", score: "import json\n\ndef init():\n    pass\n\ndef run(raw_data):\n    if json.loads(raw_data)['n'] % 2:\n        raise ValueError('odd input')\n    return json.loads(raw_data)\n")
        try fleet.deploy("app:1", rollout: "")
        let good = try ModuleRegistry(workspace: fleet.workspace()).show(VersionedName(parsing: "app:1")).digest
        #expect(await eventually(timeout: .seconds(120)) { fleet.allRun(good) }, "\(fleet.log("gw-1"))")
        for id in fleet.ids { #expect(try await fleet.score(id, count: 40) == 40) }
        // The hub holds reports of version 1's counters before the rollout starts.
        #expect(try await eventually {
            try FleetHealth(workspace: fleet.workspace()).devices().allSatisfy { summary in
                (try FleetHealth(workspace: fleet.workspace()).device(id: summary.id).report?.modules.first?.inference?.count ?? 0) >= 40
            }
        })
        try fleet.deploy("app:2", rollout: "rollout:\n  waves: [1, 100%]\n  soakSeconds: 60\n  abort: {errorRateFactor: 2.0}")
        let canary = try fleet.rollout().devices[0]
        #expect(await eventually(timeout: .seconds(120)) { fleet.running(canary).digest == bad && fleet.running(canary).running })
        #expect(try await fleet.score(canary, count: 40) == 20)
        let halted = try await fleet.waitFor(.halted, timeout: .seconds(30))
        #expect(halted.reason?.hasPrefix("errorRateFactor: error rate 0.5 over 40 requests") == true, "\(halted.reason ?? "")")
        #expect(fleet.recorder.devices(thatReceived: bad) == [canary])
    }

    /// A live scorer and two challengers: one that disagrees on 30 % of the inputs and
    /// one that agrees. Only the second is promoted under `shadowAgreement >= 0.98`.
    @Test(.enabled(if: Fixtures.shouldRun(needing: "python3")))
    func aShadowIsPromotedOnlyWhenItAgrees() async throws {
        let fleet = try await RealFleet(devices: 2)
        defer { fleet.stop() }
        let label = "import json\n\ndef init():\n    pass\n\ndef run(raw_data):\n    n = json.loads(raw_data)['n']\n"
        let live = try fleet.packageScorer("app", score: label + "    return {'label': n % 3}\n")
        let disagreeing = try fleet.packageScorer("app", score: label + "    return {'label': (n + 1) % 3 if n % 10 < 3 else n % 3}\n")
        let agreeing = try fleet.packageScorer("app", score: "# version 3: the same answers, written again\n" + label + "    return {'label': n % 3}\n")
        try fleet.deploy("app:1", rollout: "")
        try #require(await eventually(timeout: .seconds(120)) { fleet.allRun(live) }, "\(fleet.log("gw-1"))")

        let gate = "rollout:\n  waves: [1, 100%]\n  soakSeconds: 1\n  promoteWhen: {shadowAgreement: \">= 0.98\", minSamples: 50}"
        func shadowSamples(_ id: String) -> Int {
            (try? FleetHealth(workspace: fleet.workspace()).device(id: id).report?.modules.first?.shadow?.samples) ?? 0
        }

        try fleet.deploy("app:1", shadow: "app:2", rollout: gate)
        let canary = try fleet.rollout().devices[0]
        try #require(await eventually(timeout: .seconds(120)) {
            (try? FleetHealth(workspace: fleet.workspace()).device(id: canary).report?.modules.first?.shadow?.status) == .running
        }, "\(fleet.log(canary))")
        // The live answers never change while the shadow runs.
        #expect(try await fleet.score(canary, count: 100, pause: .milliseconds(50)) == 100)
        let halted = try await fleet.waitFor(.halted, timeout: .seconds(60))
        #expect(halted.reason?.contains("shadowAgreement") == true, "\(halted.reason ?? "")")
        let agreement = try #require(try RolloutStore(workspace: fleet.workspace()).status(deployment: "fleet-app").criteria
            .first { $0.name == "shadowAgreement" }?.value)
        #expect(abs(agreement - 0.7) < 0.1, "agreement \(agreement), \(shadowSamples(canary)) samples")
        #expect(fleet.running(canary).digest == live)
        #expect(fleet.recorder.devices(thatReceived: disagreeing).isEmpty)

        try fleet.deploy("app:1", shadow: "app:3", rollout: gate)
        try #require(await eventually(timeout: .seconds(120)) {
            (try? FleetHealth(workspace: fleet.workspace()).device(id: canary).report?.modules.first?.shadow?.bundleDigest) == agreeing
        })
        // Requests that meet the switch to the promoted version all succeed: the old version
        // serves until the new one is ready.
        #expect(try await fleet.score(canary, count: 60, pause: .milliseconds(50)) == 60)
        try #require(await eventually(timeout: .seconds(60)) { fleet.running(canary).digest == agreeing && fleet.running(canary).running })
        let second = fleet.ids.first { $0 != canary }!
        try #require(await eventually(timeout: .seconds(120)) {
            (try? FleetHealth(workspace: fleet.workspace()).device(id: second).report?.modules.first?.shadow?.status) == .running
        })
        #expect(try await fleet.score(second, count: 60, pause: .milliseconds(50)) == 60)
        _ = try await fleet.waitFor(.completed, timeout: .seconds(60))
        #expect(await eventually { fleet.allRun(agreeing) })
        #expect(shadowSamples(canary) == 0)
    }
}
