import FleetCore
import FleetHub
import Foundation
import Testing

/// Deployment versions and staged rollouts on a real workspace database, without a
/// broker: reports are stored as the ingestion stores them, and the rollout is
/// advanced with an explicit clock. `RolloutServeTests` runs the same through a real
/// `fleethub serve`, broker and simulated fleet.
struct RolloutTests {
    let hub: HubFixture
    let v1: ModuleVersion
    let v2: ModuleVersion
    let devices = (1...5).map { "gw-\($0)" }
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws {
        hub = try HubFixture()
        v1 = try hub.packagedScorer(weights: "w1")
        v2 = try hub.packagedScorer(weights: "w2")
        for id in devices { _ = try hub.devices.add(id: id, tags: ["site": "plant-1"]) }
    }

    func manifest(bundle: String = "iris-scorer:1", env: String = "", rollout: String = "") -> String {
        """
        name: iris-prod
        priority: 10
        target: site=plant-1
        modules:
          - name: iris
            bundle: \(bundle)
        \(env.isEmpty ? "" : "    env: {\(env)}")
        \(rollout)
        """
    }

    let staged = """
        rollout:
          waves: [1, 2, 100%]
          soakSeconds: 30
        """

    var store: RolloutStore { RolloutStore(workspace: hub.workspace) }

    /// The module digest in the desired state staged for `id`.
    func staged(_ id: String) throws -> ContentDigest? {
        try hub.devices.desiredState(id: id)?.modules.first?.bundle.digest
    }

    /// Stores a report from `id` about its latest staged revision.
    func report(
        _ id: String, status: DesiredStateStatus.Status = .applied, digest: ContentDigest? = nil, moduleStatus: ModuleHealth.Status = .running,
        requests: Int = 100, errors: Int = 0, p99: Double = 2, failedModules: [String]? = nil,
        shadow: ShadowHealth? = nil, at: Date
    ) async throws {
        let revision = try #require(try hub.devices.show(id: id).revision)
        let module = ModuleHealth(
            name: "iris", bundleDigest: try digest ?? #require(try staged(id)), status: moduleStatus,
            inference: InferenceStats(count: requests, errors: errors, p50Ms: 1, p99Ms: p99), shadow: shadow)
        let report = HealthReport(
            deviceId: id, at: at, runtimeVersion: "test", uptimeSeconds: 10,
            desired: DesiredStateStatus(revision: revision, status: status, error: status == .applied ? nil : "iris: exited 1", modules: failedModules),
            modules: [module], system: SystemHealth(cpuPercent: 1, memUsedBytes: 1, memTotalBytes: 2, diskFreeBytes: 3),
            telemetry: TelemetryHealth(buffered: 0, oldestAgeSeconds: 0, uploaded: 0, dropped: 0), reportIntervalSeconds: 30)
        let writer = HealthIngestion(workspace: hub.workspace).writer
        writer.add(.report(report), payload: try FleetJSON.encode(report), receivedAt: at)
        try await writer.flush()
    }

    func reportAll(at: Date) async throws {
        for id in devices { try await report(id, at: at) }
    }

    @Test func everyDeployIsANewVersionInTheHistory() throws {
        #expect(try hub.deploy(manifest()).version == 1)
        #expect(try hub.deploy(manifest(bundle: "iris-scorer:2")).version == 2)
        let history = try hub.deployments.history(name: "iris-prod")
        #expect(history.map(\.version) == [1, 2])
        #expect(history[1].modules == ["iris-scorer:2 (model iris:2)"])
        #expect(history[1].manifest.contains("bundle: iris-scorer:2"))
        #expect(try hub.deployments.show(name: "iris-prod").version == 2)
        #expect(throws: DeploymentError.self) { try hub.deployments.history(name: "nope") }
    }

    @Test func rollbackMakesANewVersionWithTheOldContentOnEveryDeviceAtOnce() throws {
        try hub.deploy(manifest())
        try hub.deploy(manifest(bundle: "iris-scorer:2"))
        #expect(try staged("gw-3") == v2.digest)
        let change = try hub.deployments.rollback(name: "iris-prod")
        #expect(change.version == 3)
        #expect(change.changedDevices == devices)
        for id in devices { #expect(try staged(id) == v1.digest) }
        let history = try hub.deployments.history(name: "iris-prod")
        #expect(history.last?.origin == "rollback to 1")
        #expect(throws: DeploymentError.unknownVersion("iris-prod", 9, known: [1, 2, 3], hint: nil)) {
            try hub.deployments.rollback(name: "iris-prod", to: 9)
        }
        #expect(throws: DeploymentError.noWaves("iris-prod", 2)) {
            try hub.deployments.rollback(name: "iris-prod", to: 2, staged: true)
        }
    }

    @Test func aStagedVersionReachesOneWaveAtATimeAndCompletes() async throws {
        try hub.deploy(manifest())
        let change = try hub.deploy(manifest(bundle: "iris-scorer:2", rollout: staged), now: start)
        let rollout = try #require(change.rollout)
        #expect(rollout.waveSizes == [1, 2, 5])
        #expect(change.changedDevices == [rollout.devices[0]])
        #expect(rollout.devices == RolloutTests.order(devices))
        for id in rollout.devices.dropFirst() { #expect(try staged(id) == v1.digest) }

        // Wave 1 pending: nothing moves.
        #expect(try store.advance(now: start.addingTimeInterval(5)).isEmpty)
        #expect(try store.status(deployment: "iris-prod", now: start.addingTimeInterval(5)).devices["pending"] == 1)
        try await reportAll(at: start.addingTimeInterval(6))
        #expect(try store.advance(now: start.addingTimeInterval(6)).first?.state == .soaking)
        // The soak is not over yet.
        #expect(try store.advance(now: start.addingTimeInterval(20)).isEmpty)
        let second = try #require(try store.advance(now: start.addingTimeInterval(37)).first)
        #expect(second.state == .running && second.wave == 1)
        #expect(try staged(rollout.devices[1]) == v2.digest)
        #expect(try staged(rollout.devices[2]) == v1.digest)

        try await reportAll(at: start.addingTimeInterval(40))
        try store.advance(now: start.addingTimeInterval(40))
        try store.advance(now: start.addingTimeInterval(71))
        for id in devices { #expect(try staged(id) == v2.digest) }
        try await reportAll(at: start.addingTimeInterval(72))
        try store.advance(now: start.addingTimeInterval(72))
        let done = try #require(try store.advance(now: start.addingTimeInterval(103)).first)
        #expect(done.state == .completed)
        let status = try store.status(deployment: "iris-prod", now: start.addingTimeInterval(104))
        #expect(status.devices["healthy"] == 5)
        #expect(status.wave == 3 && status.waves == 3)
        // The version is now the stable one: a device added later gets it too.
        _ = try hub.devices.add(id: "gw-9", tags: ["site": "plant-1"])
        #expect(try staged("gw-9") == v2.digest)
    }

    /// Two hub instances (two connections to one database) evaluate the same rollout at
    /// the same moment: the step is taken once, by whichever writes first.
    @Test func twoInstancesAdvancingAtOnceTakeEachStepOnce() async throws {
        try hub.deploy(manifest())
        try hub.deploy(manifest(bundle: "iris-scorer:2", rollout: staged), now: start)
        try await reportAll(at: start.addingTimeInterval(6))
        try store.advance(now: start.addingTimeInterval(6))
        let other = RolloutStore(workspace: try Workspace.open(at: hub.workspace.root))
        let now = start.addingTimeInterval(37)
        async let first = Task.detached { [store] in try store.advance(now: now) }.value
        async let second = Task.detached { try other.advance(now: now) }.value
        let steps = try await first + second
        #expect(steps.count == 1, "the wave-2 step was taken \(steps.count) times")
        let rollout = try store.latest(deployment: "iris-prod")
        #expect(rollout.wave == 1 && rollout.events.filter { $0.message.hasPrefix("wave 2") }.count == 1, "\(rollout.events.map(\.message))")
    }

    @Test func aRolledBackCanaryHaltsTheRolloutAndNoOtherDeviceGetsTheVersion() async throws {
        try hub.deploy(manifest())
        let rollout = try #require(try hub.deploy(manifest(bundle: "iris-scorer:2", rollout: staged), now: start).rollout)
        let canary = rollout.devices[0]
        try await report(canary, status: .rolledBack, digest: v1.digest, failedModules: ["iris"], at: start.addingTimeInterval(3))
        let halted = try #require(try store.advance(now: start.addingTimeInterval(3)).first)
        #expect(halted.state == .halted)
        #expect(halted.reason?.contains("1 of 1 updated devices failed, rolled back or timed out") == true)
        #expect(try FleetHealth(workspace: hub.workspace).alerts().contains { $0.kind == .rolloutHalted && $0.subject == "iris-prod" })
        for _ in 0..<3 { try store.advance(now: start.addingTimeInterval(500)) }
        for id in rollout.devices.dropFirst() { #expect(try staged(id) == v1.digest) }
        // Halt keeps what is deployed on the canary.
        #expect(try staged(canary) == v2.digest)
        // The way out: roll back to version 1 everywhere.
        _ = try hub.deployments.rollback(name: "iris-prod")
        #expect(try staged(canary) == v1.digest)
    }

    @Test func revertPutsTheUpdatedDevicesBackOnThePreviousVersion() async throws {
        try hub.deploy(manifest())
        let rollout = try #require(try hub.deploy(manifest(bundle: "iris-scorer:2", rollout: staged + "\n  onAbort: revert"), now: start).rollout)
        let canary = rollout.devices[0]
        try await report(canary, status: .failed, moduleStatus: .failed, failedModules: ["iris"], at: start.addingTimeInterval(3))
        let halted = try #require(try store.advance(now: start.addingTimeInterval(3)).first)
        #expect(halted.state == .halted)
        #expect(halted.events.last?.message.contains("reverted 1 device(s) to version 1") == true)
        #expect(try staged(canary) == v1.digest)
        // The status keeps what the rollout saw when it halted.
        let status = try store.status(deployment: "iris-prod", now: start.addingTimeInterval(10))
        #expect(status.devices["failed"] == 1)
        #expect(status.perDevice.first { $0.deviceId == canary }?.error == "iris: exited 1")
        #expect(status.criteria.first { $0.name == "failedPercent" }?.ok == false)
    }

    @Test func aMuchHigherErrorRateHaltsOnTheErrorRateCriterion() async throws {
        try hub.deploy(manifest())
        try await reportAll(at: start)
        let policy = """
            rollout:
              waves: [1, 100%]
              soakSeconds: 60
              abort: {failedPercent: 50, errorRateFactor: 2.0, p99Factor: 3.0}
            """
        let rollout = try #require(try hub.deploy(manifest(bundle: "iris-scorer:2", rollout: policy), now: start).rollout)
        #expect(rollout.baseline == InferenceFigures(requests: 500, errors: 0, p99Ms: 2))
        try await report(rollout.devices[0], requests: 200, errors: 60, at: start.addingTimeInterval(10))
        let halted = try #require(try store.advance(now: start.addingTimeInterval(10)).first)
        #expect(halted.state == .halted)
        #expect(halted.reason?.hasPrefix("errorRateFactor: error rate 0.3 over 200 requests") == true)
    }

    @Test func aSlowVersionHaltsOnTheLatencyCriterion() async throws {
        try hub.deploy(manifest())
        try await reportAll(at: start)
        let policy = """
            rollout:
              waves: [1, 100%]
              abort: {p99Factor: 3.0}
            """
        let rollout = try #require(try hub.deploy(manifest(bundle: "iris-scorer:2", rollout: policy), now: start).rollout)
        try await report(rollout.devices[0], p99: 5, at: start.addingTimeInterval(5))
        #expect(try store.advance(now: start.addingTimeInterval(5)).first?.state == .soaking)
        try await report(rollout.devices[0], p99: 7, at: start.addingTimeInterval(6))
        let halted = try #require(try store.advance(now: start.addingTimeInterval(6)).first)
        #expect(halted.state == .halted)
        #expect(halted.reason?.contains("p99 7 ms against 2 ms before") == true)
    }

    @Test func anOfflineOrSilentDeviceIsNeverHealthyAndTimesOut() async throws {
        try hub.deploy(manifest())
        let policy = """
            rollout:
              waves: [1, 100%]
              soakSeconds: 0
              abort: {timeoutSeconds: 120}
            """
        let rollout = try #require(try hub.deploy(manifest(bundle: "iris-scorer:2", rollout: policy), now: start).rollout)
        #expect(try store.advance(now: start.addingTimeInterval(119)).isEmpty)
        let halted = try #require(try store.advance(now: start.addingTimeInterval(121)).first)
        #expect(halted.state == .halted)
        #expect(halted.reason?.contains("\(rollout.devices[0]) timed-out") == true)
    }

    @Test func anotherDeploymentsFailureOnTheSameDeviceIsNotThisOnes() async throws {
        try hub.deploy(manifest())
        let rollout = try #require(try hub.deploy(manifest(bundle: "iris-scorer:2", rollout: staged), now: start).rollout)
        // The device's revision rolled back because of a module of another deployment.
        try await report(rollout.devices[0], status: .rolledBack, failedModules: ["site-agent"], at: start.addingTimeInterval(2))
        #expect(try store.advance(now: start.addingTimeInterval(2)).first?.state == .soaking)
        let status = try FleetHealth(workspace: hub.workspace).rollout(deployment: "iris-prod")
        #expect(status.count(.rolledBack) == 0)
    }

    @Test func aNewDeploySupersedesARunningRollout() throws {
        try hub.deploy(manifest())
        try hub.deploy(manifest(bundle: "iris-scorer:2", rollout: staged), now: start)
        let change = try hub.deploy(manifest(bundle: "iris-scorer:1"), now: start.addingTimeInterval(1))
        #expect(change.version == 3)
        let history = try store.latest(deployment: "iris-prod")
        #expect(history.state == .superseded)
        #expect(history.reason == "superseded by version 3")
        for id in devices { #expect(try staged(id) == v1.digest) }
    }

    @Test func pauseResumePromoteAndAbort() async throws {
        try hub.deploy(manifest())
        try hub.deploy(manifest(bundle: "iris-scorer:2", rollout: staged), now: start)
        #expect(try store.apply(.pause, deployment: "iris-prod", now: start).0.state == .paused)
        try await reportAll(at: start.addingTimeInterval(1))
        #expect(try store.advance(now: start.addingTimeInterval(100)).isEmpty)
        #expect(throws: DeploymentError.rolloutNotOpen("iris-prod", .paused, command: "pause")) {
            try store.apply(.pause, deployment: "iris-prod")
        }
        #expect(try store.apply(.resume, deployment: "iris-prod", now: start).0.state == .running)
        let (promoted, change) = try store.apply(.promote, deployment: "iris-prod", now: start)
        #expect(promoted.state == .completed)
        #expect(change.changedDevices.count == 4)
        for id in devices { #expect(try staged(id) == v2.digest) }

        try hub.deploy(manifest(bundle: "iris-scorer:1", rollout: staged), now: start)
        let (aborted, _) = try store.apply(.abort, deployment: "iris-prod", now: start)
        #expect(aborted.state == .aborted)
        for id in devices { #expect(try staged(id) == v2.digest) }
    }

    @Test func aShadowIsPromotedWaveByWaveOnlyWhenItAgrees() async throws {
        try hub.deploy(manifest())
        let policy = """
              - name: iris
                bundle: iris-scorer:1
                shadow: {bundle: iris-scorer:2, sampleRate: 0.5}
            rollout:
              waves: [1, 100%]
              soakSeconds: 0
              promoteWhen: {shadowAgreement: ">= 0.98", minSamples: 500}
            """
        let text = """
            name: iris-prod
            priority: 10
            target: site=plant-1
            modules:
            \(policy)
            """
        let rollout = try #require(try hub.deploy(text, file: "shadow.yaml").rollout)
        let canary = rollout.devices[0]
        let spec = try #require(try hub.devices.desiredState(id: canary)?.modules.first)
        #expect(spec.bundle.digest == v1.digest)
        #expect(spec.shadow?.bundle.digest == v2.digest)
        #expect(spec.shadow?.sampleRate == 0.5)

        // Too few samples: wait.
        try await report(canary, shadow: ShadowHealth(bundleDigest: v2.digest, status: .running, samples: 100, agreed: 100), at: Date())
        #expect(try store.advance().isEmpty)
        // Enough, and in agreement: the shadow becomes live on the canary.
        try await report(canary, shadow: ShadowHealth(bundleDigest: v2.digest, status: .running, samples: 600, agreed: 595), at: Date())
        let promoted = try #require(try store.advance().first)
        #expect(promoted.events.last?.message == "wave 1: shadow promoted to live on 1 device(s)")
        let live = try #require(try hub.devices.desiredState(id: canary)?.modules.first)
        #expect(live.bundle.digest == v2.digest && live.shadow == nil)
        // Once healthy on the promoted version, the next wave gets the shadow first.
        try await report(canary, at: Date())
        #expect(try store.advance().first?.wave == 1)
        let next = rollout.devices[1]
        #expect(try hub.devices.desiredState(id: next)?.modules.first?.shadow?.bundle.digest == v2.digest)
        // A shadow that disagrees on 30 % of the requests is not promoted: the rollout halts.
        for id in rollout.devices.dropFirst() {
            try await report(id, shadow: ShadowHealth(bundleDigest: v2.digest, status: .running, samples: 200, agreed: 140), at: Date())
        }
        let halted = try #require(try store.advance().first)
        #expect(halted.state == .halted)
        #expect(halted.reason?.contains("agreement 0.7") == true)
        #expect(try hub.devices.desiredState(id: next)?.modules.first?.bundle.digest == v1.digest)
    }

    @Test func aShadowThatCannotStartHaltsAGatedRollout() async throws {
        try hub.deploy(manifest())
        let text = """
            name: iris-prod
            priority: 10
            target: site=plant-1
            modules:
              - name: iris
                bundle: iris-scorer:1
                shadow: {bundle: iris-scorer:2, sampleRate: 1}
            rollout:
              waves: [1, 100%]
              promoteWhen: {shadowAgreement: ">= 0.98", minSamples: 10}
            """
        let rollout = try #require(try hub.deploy(text, file: "shadow.yaml").rollout)
        try await report(
            rollout.devices[0], shadow: ShadowHealth(bundleDigest: v2.digest, status: .failed, lastError: "init() raised ImportError"),
            at: Date())
        let halted = try #require(try store.advance().first)
        #expect(halted.state == .halted)
        #expect(halted.reason == "shadowRunning: the shadow cannot be evaluated on \(rollout.devices[0]) failed: init() raised ImportError")
        // The live module was never touched.
        #expect(try staged(rollout.devices[0]) == v1.digest)
    }

    @Test func manifestsWithRolloutErrorsAreRefusedWithFileAndLine() throws {
        func refusal(_ rollout: String) -> String {
            do {
                _ = try ManifestParser.parse(manifest(rollout: rollout), file: "m.yaml")
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal("rollout:\n  waves: [10%, 5%]") == "m.yaml:9: field 'rollout.waves[1]': waves must grow: 5% does not follow 10% (each wave is the total reached so far)")
        #expect(refusal("rollout:\n  waves: [0%]").hasPrefix("m.yaml:9: field 'rollout.waves[0]': '0%' is not a wave size"))
        #expect(refusal("rollout:\n  waves: [1]\n  abort: {errorRate: 2}").hasPrefix("m.yaml:10: field 'rollout.abort.errorRate': unknown field"))
        #expect(refusal("rollout:\n  waves: [1]\n  abort: {p99Factor: 0.5}").hasPrefix("m.yaml:10: field 'rollout.abort.p99Factor': expected a factor of 1 or more"))
        #expect(refusal("rollout:\n  waves: [1]\n  abort: {failedPercent: 150}").hasPrefix("m.yaml:10: field 'rollout.abort.failedPercent'"))
        #expect(refusal("rollout:\n  waves: [1]\n  onAbort: retry") == "m.yaml:10: field 'rollout.onAbort': 'retry' is not one of halt|revert")
        #expect(refusal("rollout:\n  waves: [1]\n  promoteWhen: {shadowAgreement: \">= 0.98\"}").hasPrefix("m.yaml:10: field 'rollout.promoteWhen': promotes shadows, but no module names a shadow"))
        #expect(refusal("rollout:\n  waves: [1]\n  canaryFirst: \"site ==\"").hasPrefix("m.yaml:10: field 'rollout.canaryFirst'"))
        let parsed = try ManifestParser.parse(manifest(rollout: "rollout:\n  waves: [1, 10%, 50%, 100%]\n  canaryFirst: role=canary"), file: "m.yaml")
        #expect(parsed.manifest.rollout?.waves == [.devices(1), .percent(10), .percent(50), .percent(100)])
        #expect(parsed.manifest.rollout?.abort == AbortCriteria())
        #expect(parsed.manifest.rollout?.waveSizes(total: 1000) == [1, 100, 500, 1000])
        #expect(parsed.manifest.rollout?.waveSizes(total: 5) == [1, 3, 5])
    }

    @Test func canaryDevicesComeFirstAndTheOrderIsStable() throws {
        _ = try hub.devices.tag(id: "gw-4", set: ["site": "plant-1", "role": "canary"])
        let policy = "rollout:\n  waves: [1, 100%]\n  canaryFirst: role=canary"
        let rollout = try #require(try hub.deploy(manifest(rollout: policy)).rollout)
        #expect(rollout.devices.first == "gw-4")
        #expect(Array(rollout.devices.dropFirst()) == RolloutTests.order(devices.filter { $0 != "gw-4" }))
    }

    @Test func theHeartbeatFollowsTheIntervalTheDeviceAnnounces() {
        let policy = HealthPolicy()
        #expect(policy.heartbeatTimeout(announced: 30) == 90)
        #expect(policy.heartbeatTimeout(announced: 2) == 6)
        #expect(policy.heartbeatTimeout(announced: nil) == policy.heartbeatTimeout)
    }

    /// The documented order: by the sha256 of the device id.
    static func order(_ ids: [String]) -> [String] {
        ids.sorted { ContentDigest(of: Data($0.utf8)).hex < ContentDigest(of: Data($1.utf8)).hex }
    }
}
