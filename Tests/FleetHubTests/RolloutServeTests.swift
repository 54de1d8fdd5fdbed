import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Logging
import Synchronization
import Testing

/// Staged rollouts end to end: a real mosquitto, a real `fleethub serve` process that
/// advances them, and the real `fleet-simulator` as the fleet, told through each
/// module's `FLEET_SIMULATOR_OUTCOME` whether the version applies, fails or rolls back.
/// An independent subscriber (`DesiredStateRecorder`) records every desired state the broker delivers.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")), .serialized)
struct RolloutServeTests {
    /// The fleet, the hub, `fleethub serve` and the subscriber, stopped by `stop()`.
    final class ServedFleet: Sendable {
        let broker: MosquittoBroker
        let hub: HubFixture
        let ids: [String]
        let simulators: [ChildProcess]
        let serveLog: String
        let port: Int
        private let serve = Mutex<ChildProcess?>(nil)
        let recorder: DesiredStateRecorder

        init(devices: Int, perProcess: Int = 250) async throws {
            let broker = try await MosquittoBroker.start()
            self.broker = broker
            hub = try HubFixture(broker: broker.url)
            try hub.packagedScorer(weights: "w1")
            try hub.packagedScorer(weights: "w2")
            try hub.packagedScorer(weights: "w3")
            ids = (0..<devices).map { String(format: "sim-%05d", $0) }
            for id in ids { _ = try hub.devices.add(id: id, tags: ["site": "plant-1"]) }
            port = try Fixtures.freePort()
            serveLog = hub.directory.file("serve.log")

            let key = hub.workspace.signingKey.publicKey
            recorder = try await DesiredStateRecorder(brokerPort: broker.port, hubKey: key)
            simulators = try stride(from: 0, to: devices, by: perProcess).map { first in
                try ChildProcess(Fixtures.builtExecutable("fleet-simulator"), [
                    "--broker", broker.url, "--devices", "\(min(perProcess, devices - first))", "--first-index", "\(first)",
                    "--interval", "1", "--duration", "600", "--hub-key", key.base64,
                ])
            }
            try startServe()
        }

        func startServe() throws {
            let process = try ChildProcess(
                Fixtures.builtExecutable("fleethub"),
                ["serve", "--workspace", hub.workspace.root.path, "--http", "127.0.0.1:\(port)"], outputPath: serveLog)
            serve.withLock { $0 = process }
        }

        /// SIGKILL, as a crash or an out-of-memory kill would.
        func killServe() async throws {
            let process = try #require(serve.withLock { $0 })
            process.signal(SIGKILL)
            try await process.waitForExit()
        }

        func deploy(_ bundle: String, env: String = "", rollout: String) async throws -> RolloutChange {
            let text = """
                name: iris-prod
                priority: 10
                target: site=plant-1
                modules:
                  - name: iris
                    bundle: \(bundle)
                    env: {\(env)}
                \(rollout)
                """
            let change = try hub.deploy(text)
            try await DesiredStatePublisher(workspace: hub.workspace).publishPending()
            return change
        }

        func digest(_ reference: String) throws -> ContentDigest {
            try hub.modules.show(VersionedName(parsing: reference)).digest
        }

        /// The module digest each device reports running.
        func running() throws -> [String: ContentDigest] {
            try FleetHealth(workspace: hub.workspace).devices().reduce(into: [:]) { result, summary in
                if let digest = try FleetHealth(workspace: hub.workspace).device(id: summary.id).report?.modules.first?.bundleDigest {
                    result[summary.id] = digest
                }
            }
        }

        func rollout() throws -> Rollout { try RolloutStore(workspace: hub.workspace).latest(deployment: "iris-prod") }

        func waitFor(_ state: Rollout.State, timeout: Duration = .seconds(90)) async throws -> Rollout {
            let reached = try await eventually(timeout: timeout) { try rollout().state == state }
            let current = try rollout()
            #expect(reached, "rollout is \(current.state.rawValue), not \(state.rawValue): \(current.events.map(\.message)); serve log: \((try? String(contentsOfFile: serveLog, encoding: .utf8)) ?? "")")
            return current
        }

        func stop() {
            serve.withLock { $0?.stop() }
            for simulator in simulators { simulator.stop() }
            recorder.stop()
            broker.stop()
        }
    }

    @Test func aGoodVersionCompletesABadOneHaltsAndRevertsAndAKilledHubResumes() async throws {
        let fleet = try await ServedFleet(devices: 5)
        defer { fleet.stop() }
        let (v1, v2, v3) = (try fleet.digest("iris-scorer:1"), try fleet.digest("iris-scorer:2"), try fleet.digest("iris-scorer:3"))
        _ = try await fleet.deploy("iris-scorer:1", rollout: "")
        #expect(try await eventually { try fleet.running().values.filter { $0 == v1 }.count == 5 })

        // A good version reaches every device, wave by wave.
        let waves = "rollout:\n  waves: [1, 2, 100%]\n  soakSeconds: 1"
        let good = try #require(try await fleet.deploy("iris-scorer:2", rollout: waves).rollout)
        #expect(good.waveSizes == [1, 2, 5])
        var done = try await fleet.waitFor(.completed)
        #expect(done.events.filter { $0.message.hasPrefix("wave 2 of 3") }.count == 1)
        #expect(done.events.filter { $0.message.hasPrefix("wave 3 of 3") }.count == 1)
        #expect(try await eventually { try fleet.running().values.allSatisfy { $0 == v2 } })

        // A version that rolls back on its first device halts after wave 1, is reverted
        // there, and no other device ever receives it.
        let bad = try #require(try await fleet.deploy(
            "iris-scorer:3", env: "FLEET_SIMULATOR_OUTCOME: rolled-back", rollout: waves + "\n  onAbort: revert").rollout)
        let canary = bad.devices[0]
        let halted = try await fleet.waitFor(.halted)
        #expect(halted.wave == 0)
        #expect(halted.reason?.contains("\(canary) rolled-back") == true)
        #expect(try await eventually { try fleet.hub.devices.desiredState(id: canary)?.modules.first?.bundle.digest == v2 })
        try await Task.sleep(for: .seconds(2))
        #expect(fleet.recorder.devices(thatReceived: v3) == [canary])
        #expect(try FleetHealth(workspace: fleet.hub.workspace).alerts().contains { $0.kind == .rolloutHalted })
        if let browser = Fixtures.which("chromium") ?? (Fixtures.isCI ? "chromium" : nil) {
            // As DashboardTests does: headless Chromium cannot answer the Basic challenge.
            var access = try HTTPAccess.load(from: fleet.hub.workspace)
            access.publicReads = true
            try access.save(in: fleet.hub.workspace)
            let page = try Fixtures.run(browser, [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=5000",
                "--dump-dom", "http://127.0.0.1:\(fleet.port)/rollouts/iris-prod",
            ])
            #expect(page.contains(#"id="rollout-state">halted<"#))
            #expect(page.contains("\(canary) rolled-back"))
            #expect(page.contains("iris-scorer:3 (model iris:3)"))
            let overview = try Fixtures.run(browser, [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=5000",
                "--dump-dom", "http://127.0.0.1:\(fleet.port)/",
            ])
            #expect(overview.contains(#"data-kind="rollout-halted""#))
            #expect(overview.contains(#"data-rollout="iris-prod""#))
        }

        // Killed with SIGKILL in the middle of a rollout, the hub resumes from its wave.
        _ = try await fleet.deploy("iris-scorer:1", rollout: "rollout:\n  waves: [1, 2, 100%]\n  soakSeconds: 3")
        #expect(try await eventually(timeout: .seconds(60)) { try fleet.rollout().wave == 1 })
        try await fleet.killServe()
        try await Task.sleep(for: .seconds(1))
        #expect(try fleet.rollout().wave == 1)
        try fleet.startServe()
        done = try await fleet.waitFor(.completed)
        #expect(done.events.filter { $0.message.hasPrefix("wave 2 of 3") }.count == 1)
        #expect(done.events.filter { $0.message.hasPrefix("wave 3 of 3") }.count == 1)
        #expect(try await eventually { try fleet.running().values.allSatisfy { $0 == v1 } })
    }

    @Test func aRolloutWaitsWhileTheBrokerIsDownAndSaysSo() async throws {
        let fleet = try await ServedFleet(devices: 5)
        defer { fleet.stop() }
        let v2 = try fleet.digest("iris-scorer:2")
        _ = try await fleet.deploy("iris-scorer:1", rollout: "")
        _ = try await fleet.deploy("iris-scorer:2", rollout: "rollout:\n  waves: [1, 100%]\n  soakSeconds: 4")
        _ = try await fleet.waitFor(.soaking)
        fleet.broker.kill()
        #expect(try await eventually { try fleet.rollout().waiting?.contains("unreachable") == true })
        let status = try RolloutStore(workspace: fleet.hub.workspace).status(deployment: "iris-prod")
        #expect(status.waiting?.contains("is unreachable") == true)
        try await Task.sleep(for: .seconds(6))
        #expect(try fleet.rollout().state == .soaking)
        try await fleet.broker.restart()
        let done = try await fleet.waitFor(.completed)
        #expect(done.waiting == nil)
        #expect(try await eventually { try fleet.running().values.filter { $0 == v2 }.count == 5 })
    }

    @Test(.disabled(if: HubTestDatabase.isPostgres, "not yet run on PostgreSQL: in the debug build it does not finish in 400 s"))
    func aThousandSimulatedDevicesCompleteAFourWaveRollout() async throws {
        let fleet = try await ServedFleet(devices: 1000)
        defer { fleet.stop() }
        let (v1, v2) = (try fleet.digest("iris-scorer:1"), try fleet.digest("iris-scorer:2"))
        _ = try await fleet.deploy("iris-scorer:1", rollout: "")
        #expect(try await eventually(timeout: .seconds(90)) { try fleet.running().values.filter { $0 == v1 }.count == 1000 })
        let started = try #require(try await fleet.deploy(
            "iris-scorer:2", rollout: "rollout:\n  waves: [1, 10%, 50%, 100%]\n  soakSeconds: 1").rollout)
        #expect(started.waveSizes == [1, 100, 500, 1000])
        let done = try await fleet.waitFor(.completed, timeout: .seconds(180))
        #expect(done.events.filter { $0.message.hasPrefix("wave ") && $0.message.contains(" of 4:") }.count == 3)
        #expect(try await eventually(timeout: .seconds(30)) { try fleet.running().values.filter { $0 == v2 }.count == 1000 })
    }
}
