import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

/// The daemon end to end, in this process: real broker, bundles over real HTTP, real
/// child processes and a real SQLite file.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct RuntimeIntegrationTests {
    static let settings = RuntimeSettings(
        backoff: BackoffSchedule(initial: .milliseconds(100), maximum: .seconds(1), resetAfter: .seconds(10)),
        rollbackWindow: .milliseconds(800), stopGracePeriod: .seconds(2), applyRetry: BackoffSchedule(initial: .seconds(1), maximum: .seconds(1)))

    static func service(version: Int) throws -> TestBundle {
        try TestBundle.shellModule(
            name: "svc", version: version,
            script: "echo \"svc v\(version) started\"\ntrap 'exit 0' TERM\nwhile true; do sleep 0.1; done\n")
    }

    /// A module that left the device comes back from the cache with the hub unreachable;
    /// with a budget of 0 what left is evicted at once.
    @Test func aModuleThatComesBackStartsFromTheCacheWithoutTheHub() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let daemon = Task {
            try await EdgeRuntimeDaemon(config: device.config, settings: Self.settings, logger: Logger(label: "runtime")).run()
        }
        defer { daemon.cancel() }
        let v1 = try device.module("svc", Self.service(version: 1))
        let v2 = try device.module("svc", Self.service(version: 2))
        _ = try await device.publish(revision: 1, [v1])
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied) })
        _ = try await device.publish(revision: 2, [v2])
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 2, status: .applied) })

        let downloads = device.server.requests.count
        device.server.stop()
        _ = try await device.publish(revision: 3, [v1])
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 3, status: .applied) })
        let module = try #require(try device.status().modules.first)
        #expect(module.status == .running && module.bundleDigest == v1.bundle.digest)
        #expect(device.server.requests.count == downloads)
        #expect(FileManager.default.fileExists(atPath: device.dataDirectory.bundle(v2.bundle.digest).path))

        daemon.cancel()
        _ = try? await daemon.value
        var noCache = device.config
        noCache.cacheBudgetMB = 0
        let again = Task { try await EdgeRuntimeDaemon(config: noCache, settings: Self.settings, logger: Logger(label: "runtime")).run() }
        defer { again.cancel() }
        #expect(await eventually { (try? device.status().modules.first?.status) == .running })
        var changed = v1
        changed.env = ["LEVEL": "2"]
        _ = try await device.publish(revision: 4, [changed])
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 4, status: .applied) })
        #expect(!FileManager.default.fileExists(atPath: device.dataDirectory.bundle(v2.bundle.digest).path))
        #expect(!FileManager.default.fileExists(atPath: device.dataDirectory.moduleFolder(v2.bundle.digest).path))
        #expect(FileManager.default.fileExists(atPath: device.dataDirectory.moduleFolder(v1.bundle.digest).path))
    }

    @Test func deployUpdateFailedUpdateReplayAndForgery() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let daemon = Task {
            try await EdgeRuntimeDaemon(config: device.config, settings: Self.settings, logger: Logger(label: "runtime")).run()
        }
        defer { daemon.cancel() }

        // Deploy → running.
        let v1 = try Self.service(version: 1)
        let first = try await device.publish(revision: 1, [try device.module("svc", v1)])
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied) })
        var module = try #require(try device.status().modules.first)
        #expect(module.status == .running && module.bundleDigest == v1.digest)
        let v1Pid = try #require(module.pid)
        #expect(try await device.connectionState()?.online == true)
        #expect(await eventually {
            (try? ModuleLogReader(dataDirectory: device.dataDirectory, module: "svc").tail(1)) == ["svc v1 started"]
        })

        // Update → switched; the old process is gone.
        let v2 = try Self.service(version: 2)
        _ = try await device.publish(revision: 2, [try device.module("svc", v2)])
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 2, status: .applied) })
        module = try #require(try device.status().modules.first)
        #expect(module.status == .running && module.bundleDigest == v2.digest)
        let v2Pid = try #require(module.pid)
        #expect(!isAlive(v1Pid))
        // v1 is no longer used by anything: it stays in the cache, well within the default budget.
        #expect(FileManager.default.fileExists(atPath: device.dataDirectory.bundle(v1.digest).path))
        #expect(FileManager.default.fileExists(atPath: device.dataDirectory.moduleFolder(v1.digest).path))

        // Failing update → rolled back to v2, which keeps running; v2 is never deleted.
        let broken = try TestBundle.shellModule(name: "svc", version: 3, script: "echo broken\nexit 1\n")
        _ = try await device.publish(revision: 3, [try device.module("svc", broken)])
        #expect(await eventually { (try? device.status().desired.status) == .rolledBack })
        let status = try device.status()
        #expect(status.desired.revision == 3)
        #expect(status.desired.error?.contains("exited with code 1") == true)
        #expect(status.appliedRevision == 2)
        module = try #require(status.modules.first)
        #expect(module.status == .running && module.bundleDigest == v2.digest)
        #expect(module.pid != v2Pid)
        #expect(FileManager.default.fileExists(atPath: device.dataDirectory.moduleFolder(v2.digest).path))

        // A replayed old revision and a forged newer one change nothing.
        try await device.publish(first)
        #expect(await eventually { (try? device.status().lastRefusal)?.contains("not newer") == true })
        let forger = HubSigningKey()
        var forged = try forger.sign(device.desiredState(revision: 10, [try device.module("svc", v1)]))
        forged.keyId = device.hubKey.publicKey.keyId
        try await device.publish(forged)
        #expect(await eventually { (try? device.status().lastRefusal)?.contains("forged") == true })
        #expect(try device.status().acceptedRevision == 3)
        #expect(try device.status().modules.first?.bundleDigest == v2.digest)

        // Stopping the runtime stops its modules and tells the hub it is offline.
        let lastPid = try #require(try device.status().modules.first?.pid)
        daemon.cancel()
        try await daemon.value
        #expect(!isAlive(lastPid))
        #expect(processes(workingIn: device.dataDirectory.modules).isEmpty)
        #expect(try await device.connectionState()?.online == false)
    }

    @Test func aBundleThatCannotBeDownloadedFailsTheRevisionAndLeavesOtherModulesRunning() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let daemon = Task {
            try await EdgeRuntimeDaemon(config: device.config, settings: Self.settings, logger: Logger(label: "runtime")).run()
        }
        defer { daemon.cancel() }
        let good = try device.module("good", try Self.service(version: 1))
        var missing = good
        missing.name = "missing"
        missing.bundle = BundleReference(digest: ContentDigest(of: Data("absent".utf8)), size: 6, url: "/v1/bundles/absent")
        _ = try await device.publish(revision: 1, [good, missing])
        #expect(await eventually { (try? device.status().desired.status) == .failed })
        let status = try device.status()
        #expect(status.desired.error?.contains("HTTP 404") == true)
        #expect(status.modules.first { $0.name == "good" }?.status == .running)
        daemon.cancel()
        try await daemon.value
    }

    @Test func aNewerDesiredStateSupersedesTheOneBeingApplied() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let daemon = Task {
            try await EdgeRuntimeDaemon(config: device.config, settings: Self.settings, logger: Logger(label: "runtime")).run()
        }
        defer { daemon.cancel() }
        let v1 = try Self.service(version: 1)
        let v2 = try Self.service(version: 2)
        _ = try await device.publish(revision: 1, [try device.module("svc", v1)])
        // Revision 2 arrives while revision 1 is still inside its rollback window.
        #expect(await eventually { (try? device.status().modules.first?.status) == .running })
        _ = try await device.publish(revision: 2, [try device.module("svc", v2)])
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 2, status: .applied) })
        let module = try #require(try device.status().modules.first)
        #expect(module.bundleDigest == v2.digest && module.status == .running)
        #expect(processes(workingIn: device.dataDirectory.modules).count >= 1)
        #expect(processes(workingIn: device.dataDirectory.moduleFolder(v1.digest)).isEmpty)
        daemon.cancel()
        try await daemon.value
    }

    @Test func modulesKeepRunningWhileTheBrokerIsGoneAndTheDeviceAnnouncesItselfAgain() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let daemon = Task {
            try await EdgeRuntimeDaemon(config: device.config, settings: Self.settings, logger: Logger(label: "runtime")).run()
        }
        defer { daemon.cancel() }
        _ = try await device.publish(revision: 1, [try device.module("svc", try Self.service(version: 1))])
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied) })
        let pid = try #require(try device.status().modules.first?.pid)

        // The broker keeps no state: after its restart only the runtime's reconnect
        // can bring the retained online message back.
        device.broker.kill()
        try await Task.sleep(for: .milliseconds(500))
        #expect(isAlive(pid))
        try await device.broker.restart()
        #expect(await eventually(timeout: .seconds(15)) { (try? await device.connectionState())??.online == true })
        #expect(isAlive(pid))
        #expect(try device.status().modules.first?.restarts == 0)
        daemon.cancel()
        try await daemon.value
    }
}
