import FleetCore
import FleetTesting
import Foundation
import Testing

/// `edge-runtime status` as an operator meets it on a new device: before the daemon
/// ever ran, and with a config that is cut short.
struct StatusCommandTests {
    @Test func beforeAnyRunStatusSaysTheDaemonHasNotRunWithExitCode3() throws {
        let directory = try TemporaryDirectory(prefix: "status-before-run")
        let path = directory.file("gw-001.yaml")
        try DeviceConfig(
            deviceId: "gw-001", broker: BrokerSettings(url: "mqtt://127.0.0.1:1883", insecure: true),
            hub: HubSettings(publicKey: HubSigningKey().publicKey.base64, bundleBaseURL: "http://127.0.0.1:8080"),
            dataDir: directory.file("data")
        ).save(to: path)
        do {
            _ = try KilledRuntimeTests.cli(["status", "--config", path])
            Issue.record("status succeeded before any run")
        } catch let FixtureError.commandFailed(_, status, stderr) {
            #expect(status == 3)
            #expect(stderr.contains("edge-runtime has not run yet with the data dir \(directory.file("data"))"), "\(stderr)")
            #expect(!stderr.contains("Usage:"), "\(stderr)")
        }
    }

    @Test func aTruncatedConfigNamesTheKeyAndTheFileWithoutAUsageLine() throws {
        let directory = try TemporaryDirectory(prefix: "status-truncated")
        let path = directory.file("gw-001.yaml")
        try "deviceId: gw-001\nbroker:\n  url: mqtt://127.0.0.1:1883\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try KilledRuntimeTests.cli(["status", "--config", path])
            Issue.record("status accepted a config without hub settings")
        } catch let FixtureError.commandFailed(_, status, stderr) {
            #expect(status == 1)
            #expect(stderr.contains("config file \(path) is invalid: missing key 'hub'"), "\(stderr)")
            #expect(!stderr.contains("keyNotFound") && !stderr.contains("Usage:"), "\(stderr)")
        }
    }
}
