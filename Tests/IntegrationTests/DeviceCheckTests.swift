import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// `edge-runtime check` against a real TLS fleet (`fleethub` CLI, the broker running
/// the configuration `broker-config` wrote, `fleethub serve` over HTTPS): it passes a good setup
/// and fails each broken one, while the daemon runs without connecting as the device.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct DeviceCheckTests {
    /// A TLS fleet of one device with a deployed process module, and the hub serving bundles.
    final class Fleet: Sendable {
        let directory: TemporaryDirectory
        let workspace: String
        let configPath: String
        let broker: TLSBroker
        let server: ChildProcess

        init() async throws {
            let fleethub = Fixtures.builtExecutable("fleethub")
            directory = try TemporaryDirectory(prefix: "device-check")
            let workspace = directory.file("hub")
            self.workspace = workspace
            let brokerPort = try Fixtures.freePort()
            let httpPort = try Fixtures.freePort()
            let hub = { (arguments: [String]) throws -> String in
                try Fixtures.run(fleethub, arguments + ["--workspace", workspace])
            }
            _ = try hub(["init", "--broker", "mqtts://127.0.0.1:\(brokerPort)", "--public-url", "https://127.0.0.1:\(httpPort)"])
            _ = try hub(["broker-config", "--out", directory.file("broker"), "--listen", "127.0.0.1:\(brokerPort)", "--run-as", NSUserName()])
            broker = try await TLSBroker.start(configFile: directory.file("broker/mosquitto.conf"), port: brokerPort)
            let source = directory.file("agent")
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            try "while true; do sleep 0.2; done\n".write(toFile: "\(source)/run.sh", atomically: true, encoding: .utf8)
            _ = try hub(["module", "package", "--name", "agent", "--kind", "process", "--command", "/bin/sh run.sh", "--source", source])
            configPath = directory.file("gw-001.yaml")
            _ = try hub(["device", "add", "gw-001", "--out", configPath, "--data-dir", directory.file("device"),
                         "--local-api", "127.0.0.1:\(try Fixtures.freePort())"])
            try "name: agent\npriority: 1\ntarget: \"*\"\nmodules:\n  - name: agent\n    bundle: agent:1\n"
                .write(toFile: directory.file("agent.yaml"), atomically: true, encoding: .utf8)
            _ = try hub(["deploy", directory.file("agent.yaml")])
            server = try ChildProcess(
                fleethub, ["serve", "--http", "127.0.0.1:\(httpPort)", "--workspace", workspace], outputPath: directory.file("hub.log"))
            guard await eventually(timeout: .seconds(10), { Fixtures.isListening(port: httpPort) }) else {
                throw FixtureError.didNotStart("fleethub serve", log: (try? String(contentsOfFile: directory.file("hub.log"), encoding: .utf8)) ?? "")
            }
        }

        @discardableResult
        func hub(_ arguments: String...) throws -> String {
            try Fixtures.run(Fixtures.builtExecutable("fleethub"), arguments + ["--workspace", workspace])
        }

        /// The device config with `change` applied, written next to the real one.
        func variant(_ name: String, _ change: (inout DeviceConfig) -> Void) throws -> String {
            var config = try DeviceConfig.load(from: configPath)
            change(&config)
            let path = directory.file("\(name).yaml")
            try config.save(to: path)
            return path
        }

        /// Runs `edge-runtime check` on `config`: its exit status, output and duration.
        func check(_ config: String) async throws -> (passed: Bool, output: String, took: Duration) {
            let log = directory.file("check-\(UUID().uuidString).log")
            let started = ContinuousClock.now
            let process = try ChildProcess(Fixtures.builtExecutable("edge-runtime"), ["check", "--config", config], outputPath: log)
            let status = try await process.waitForExit()
            return (status == 0, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "", ContinuousClock.now - started)
        }

        func stop() {
            server.stop()
            broker.stop()
        }
    }

    @Test func aGoodSetupPassesAndARefusedTokenOrAWrongHubKeyFails() async throws {
        let fleet = try await Fleet()
        defer { fleet.stop() }

        let good = try await fleet.check(fleet.configPath)
        #expect(good.passed, "\(good.output)")
        #expect(good.output.contains("[pass] bundle download authorised"), "\(good.output)")
        #expect(good.output.contains("HTTP 206"), "the check did not download a real bundle: \(good.output)")
        #expect(good.output.contains("verifies the hub's desired state revision"), "\(good.output)")

        let forged = try fleet.variant("forged-token") { $0.hub.token = "gw-001:" + String(repeating: "0", count: 64) }
        let refused = try await fleet.check(forged)
        #expect(!refused.passed)
        #expect(refused.output.contains("[FAIL] bundle download authorised"), "\(refused.output)")
        #expect(refused.output.contains("HTTP 403"), "\(refused.output)")

        let otherKey = try fleet.variant("other-hub-key") { $0.hub.publicKey = HubSigningKey().publicKey.base64 }
        let unverified = try await fleet.check(otherKey)
        #expect(!unverified.passed)
        #expect(unverified.output.contains("[FAIL] hub key verifies the desired state"), "\(unverified.output)")
        #expect(unverified.output.contains("does not verify the hub's retained desired state"), "\(unverified.output)")

        // A config exported again gets a new certificate and token; the old token is refused from then on.
        let exported = fleet.directory.file("exported/gw-001.yaml")
        try fleet.hub("device", "config", "gw-001", "--out", exported, "--data-dir", fleet.directory.file("device"))
        let renewed = try await fleet.check(exported)
        #expect(renewed.passed, "\(renewed.output)")
        let replaced = try await fleet.check(fleet.configPath)
        #expect(replaced.output.contains("HTTP 403"), "\(replaced.output)")
    }

    @Test func aHubCertificateFromAnotherCAFailsTheBundleCheckNamingTheCertificate() async throws {
        let fleet = try await Fleet()
        defer { fleet.stop() }
        let other = fleet.directory.file("other-hub")
        _ = try Fixtures.run(Fixtures.builtExecutable("fleethub"), ["init", "--workspace", other])
        let untrusting = try fleet.variant("other-ca") { $0.hub.caFile = "\(other)/ca/ca.crt" }

        let result = try await fleet.check(untrusting)
        #expect(!result.passed)
        #expect(result.output.contains("[FAIL] bundle download authorised"), "\(result.output)")
        #expect(result.output.contains("TLS verification of https://127.0.0.1:"), "\(result.output)")
        #expect(result.output.contains("CERTIFICATE_VERIFY_FAILED"), "\(result.output)")
        #expect(result.output.contains("hub.caFile"), "\(result.output)")
    }

    @Test func aRefusedBrokerFailsAtOnceSayingRefused() async throws {
        let fleet = try await Fleet()
        defer { fleet.stop() }
        fleet.broker.stop()

        let result = try await fleet.check(fleet.configPath)
        #expect(!result.passed)
        #expect(result.output.contains("[FAIL] broker reachable and authorised"), "\(result.output)")
        #expect(result.output.lowercased().contains("refused"), "\(result.output)")
        #expect(result.took < .seconds(3), "the check took \(result.took) on a refused port")
    }

    @Test func whileTheDaemonRunsTheCheckReadsItsSessionInsteadOfConnecting() async throws {
        let fleet = try await Fleet()
        defer { fleet.stop() }
        let config = try DeviceConfig.load(from: fleet.configPath)
        let runtime = try ChildProcess(
            Fixtures.builtExecutable("edge-runtime"), ["run", "--config", fleet.configPath],
            outputPath: fleet.directory.file("runtime.log"))
        defer { runtime.stop() }
        let database = DataDirectory(config: config).database
        // Connected, and the retained desired state `device add` published has arrived.
        let connected = await eventually {
            guard FileManager.default.fileExists(atPath: database.path) else { return false }
            let session = try? StateStore(url: database).session()
            return session?.connected == true && session?.lastDesiredState != nil
        }
        #expect(connected, "\((try? String(contentsOfFile: fleet.directory.file("runtime.log"), encoding: .utf8)) ?? "")")
        let connectionsBefore = fleet.broker.log.components(separatedBy: "New client connected").count

        let running = try await fleet.check(fleet.configPath)
        #expect(running.passed, "\(running.output)")
        #expect(running.output.contains("the running daemon (pid \(runtime.pid)) is connected"), "\(running.output)")
        #expect(running.output.contains("in the running daemon"), "\(running.output)")
        #expect(fleet.broker.log.components(separatedBy: "New client connected").count == connectionsBefore,
                "the check connected to the broker while the daemon ran")

        // The daemon's view of a broker that went away.
        fleet.broker.stop()
        #expect(await eventually { (try? StateStore(url: database).session())?.connected == false })
        let down = try await fleet.check(fleet.configPath)
        #expect(!down.passed)
        #expect(down.output.contains("the running daemon (pid \(runtime.pid)) is not connected"), "\(down.output)")
    }
}
