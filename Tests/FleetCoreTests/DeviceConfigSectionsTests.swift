import FleetCore
import FleetTesting
import Foundation
import Testing

/// The device config's local API, storage, telemetry and environments sections.
struct DeviceConfigSectionsTests {
    @Test func localAPIAddressesParse() throws {
        #expect(try LocalAPISettings(address: "127.0.0.1:8765") == LocalAPISettings(host: "127.0.0.1", port: 8765))
        #expect(try LocalAPISettings(address: ":9000") == LocalAPISettings(port: 9000))
        #expect(try LocalAPISettings(address: "::1:9000") == LocalAPISettings(host: "::1", port: 9000))
        for bad in ["127.0.0.1", "host:", "host:http", "host:70000"] {
            #expect(throws: ConfigError.badLocalAPIAddress(bad)) { try LocalAPISettings(address: bad) }
        }
    }

    @Test func theSectionsSurviveTheYAMLFile() throws {
        let directory = try TemporaryDirectory(prefix: "config")
        let config = DeviceConfig(
            deviceId: "gw-001", broker: BrokerSettings(url: "mqtt://127.0.0.1:1883", insecure: true),
            hub: HubSettings(publicKey: "key", bundleBaseURL: "http://127.0.0.1:8080"), dataDir: "/var/lib/edge",
            localAPI: LocalAPISettings(host: "127.0.0.1", port: 8765, socketPath: "/run/edge.sock", requestTimeoutSeconds: 5),
            storage: StorageSettings(url: "s3://telemetry/fleet", endpoint: "http://127.0.0.1:8333", credentialsFile: "/etc/creds"),
            telemetry: TelemetryBufferSettings(maxRecords: 1000, uploadIntervalSeconds: 10),
            environments: EnvironmentSettings(venvTimeoutSeconds: 60, pipTimeoutSeconds: 1200))
        let path = directory.file("gw-001.yaml")
        try config.save(to: path)
        #expect(try DeviceConfig.load(from: path) == config)
    }

    @Test func aTimeoutThatIsNotPositiveIsRefusedNamingTheKey() throws {
        let directory = try TemporaryDirectory(prefix: "config")
        let path = directory.file("gw-001.yaml")
        try DeviceConfig(
            deviceId: "gw-001", broker: BrokerSettings(url: "mqtt://127.0.0.1:1883", insecure: true),
            hub: HubSettings(publicKey: "key", bundleBaseURL: "http://127.0.0.1:8080"),
            environments: EnvironmentSettings(pipTimeoutSeconds: 0)
        ).save(to: path)
        #expect(throws: ConfigError.invalid(
            path: path, reason: "environments.pipTimeoutSeconds: 0 is not positive; give the seconds the command may take")) {
            try DeviceConfig.load(from: path)
        }
    }

    @Test func aTruncatedConfigNamesTheMissingKeyAndTheFile() throws {
        let directory = try TemporaryDirectory(prefix: "config")
        let path = directory.file("gw-001.yaml")
        try DeviceConfig(
            deviceId: "gw-001", broker: BrokerSettings(url: "mqtt://127.0.0.1:1883", insecure: true),
            hub: HubSettings(publicKey: "key", bundleBaseURL: "http://127.0.0.1:8080")
        ).save(to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let truncated = text.split(separator: "\n").filter { !$0.contains("publicKey") }.joined(separator: "\n")
        try truncated.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.invalid(path: path, reason: "missing key 'hub.publicKey' (a truncated or hand-edited file?)")) {
            try DeviceConfig.load(from: path)
        }
        try "".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.invalid(path: path, reason: "the file is not a mapping of keys to values (is it empty?)")) {
            try DeviceConfig.load(from: path)
        }
    }

    @Test func aConfigWithoutTheSectionsStillLoads() throws {
        let directory = try TemporaryDirectory(prefix: "config")
        let path = directory.file("old.yaml")
        try """
            deviceId: gw-001
            broker: {url: "mqtt://127.0.0.1:1883", insecure: true}
            hub: {publicKey: key, bundleBaseURL: "http://127.0.0.1:8080"}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try DeviceConfig.load(from: path)
        #expect(config.localAPI == nil && config.storage == nil && config.telemetry == nil)
    }
}
