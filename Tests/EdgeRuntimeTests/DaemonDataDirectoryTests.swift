import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// The real `edge-runtime run`: one daemon per data dir, `status` telling a running
/// daemon from a killed one, and a daemon whose descriptors are all above 1023.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct DaemonDataDirectoryTests {
    static let shellService = "echo svc started\ntrap 'exit 0' TERM\nwhile true; do sleep 0.1; done\n"

    /// A device with its config saved as `gw-001.yaml`, and a shell service's bundle for it.
    static func deviceWithService() async throws -> (DeviceFixture, String, TestBundle) {
        let device = try await DeviceFixture()
        let configPath = device.directory.file("gw-001.yaml")
        try device.config.save(to: configPath)
        return (device, configPath, try TestBundle.shellModule(name: "svc", version: 1, script: shellService))
    }

    @Test func aSecondDaemonOnTheSameDataDirIsRefusedAndTouchesNothing() async throws {
        let (device, configPath, bundle) = try await Self.deviceWithService()
        defer { device.stop() }
        _ = try await device.publish(revision: 1, [try device.module("svc", bundle)])

        let first = try KilledRuntimeTests.start(config: configPath, log: device.directory.file("runtime-1.log"))
        defer { first.stop() }
        #expect(await eventually { (try? device.status().modules.first?.status) == .running })
        let modulePid = try #require(try device.status().modules.first?.pid)
        #expect(try KilledRuntimeTests.cli(["status", "--config", configPath]).contains("edge-runtime running (pid \(first.pid))"))

        // Another local API port, so only the data dir is shared.
        var other = device.config
        other.localAPI = LocalAPISettings(port: try Fixtures.freePort())
        let otherPath = device.directory.file("gw-001-other.yaml")
        try other.save(to: otherPath)
        let secondLog = device.directory.file("runtime-2.log")
        let started = ContinuousClock.now
        let second = try KilledRuntimeTests.start(config: otherPath, log: secondLog)
        defer { second.stop() }
        let status = try await second.waitForExit(timeout: .seconds(10))
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(status != 0)
        let output = try String(contentsOfFile: secondLog, encoding: .utf8)
        #expect(output.contains("pid \(first.pid)"), "\(output)")
        #expect(output.contains("data dir"), "\(output)")

        // The first daemon's module was not ended, nor restarted.
        try await Task.sleep(for: .milliseconds(500))
        #expect(isAlive(modulePid))
        #expect(try device.status().modules.first?.pid == modulePid)
        #expect(try device.status().modules.first?.restarts == 0)
        #expect(first.isRunning)
    }

    @Test func statusAfterAKillSaysTheDaemonIsNotRunning() async throws {
        let (device, configPath, bundle) = try await Self.deviceWithService()
        defer { device.stop() }
        _ = try await device.publish(revision: 1, [try device.module("svc", bundle)])

        let runtime = try KilledRuntimeTests.start(config: configPath, log: device.directory.file("runtime.log"))
        defer { runtime.stop() }
        #expect(await eventually { (try? device.status().modules.first?.status) == .running })
        let json = try KilledRuntimeTests.cli(["status", "--json", "--config", configPath])
        #expect(try FleetJSON.decode(RuntimeStatus.self, from: Data(json.utf8)).daemonPid == runtime.pid)

        runtime.signal(SIGKILL)
        _ = try await runtime.waitForExit()
        let text = try KilledRuntimeTests.cli(["status", "--config", configPath])
        #expect(text.contains("edge-runtime not running"), "\(text)")
        #expect(text.contains("was running"), "\(text)")
        let afterKill = try KilledRuntimeTests.cli(["status", "--json", "--config", configPath])
        #expect(try FleetJSON.decode(RuntimeStatus.self, from: Data(afterKill.utf8)).daemonPid == nil)
    }

    @Test func aDaemonStartedWith1100InheritedDescriptorsAppliesADeployment() async throws {
        let (device, configPath, bundle) = try await Self.deviceWithService()
        defer { device.stop() }

        // Descriptors 3…1102 of the daemon are /dev/null, which it leaves open: every
        // socket it opens is numbered above 1023.
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devNull) }
        let inherited = Dictionary(uniqueKeysWithValues: (Int32(3)...1102).map { ($0, devNull) })
        let runtime = try ChildProcess(
            KilledRuntimeTests.executable.path,
            ["run", "--config", configPath, "--rollback-window", "0.5", "--stop-grace", "2"],
            outputPath: device.directory.file("runtime.log"), descriptors: inherited)
        defer { runtime.stop() }
        #expect(await eventually { (try? await device.connectionState())?.online == true })
        let sockets = openSockets(of: runtime.pid)
        #expect(!sockets.isEmpty && sockets.allSatisfy { $0 >= 1024 }, "\(sockets)")

        _ = try await device.publish(revision: 1, [try device.module("svc", bundle)])
        #expect(await eventually { (try? device.status().modules.first?.status) == .running })
        #expect(await eventually { (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied) })
    }

    /// The descriptor numbers of `pid`'s sockets.
    func openSockets(of pid: pid_t) -> [Int32] {
        let folder = "/proc/\(pid)/fd"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.compactMap { name in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/\(name)"),
                target.hasPrefix("socket:")
            else { return nil }
            return Int32(name)
        }.sorted()
    }
}
