import FleetTesting
import Foundation
import Testing

@testable import FleetCore

struct ContractTests {
    @Test func topicsFollowTheContract() {
        #expect(Topics.desired("gw-001") == "fleet/v1/devices/gw-001/desired")
        #expect(Topics.reported("gw-001") == "fleet/v1/devices/gw-001/reported")
        #expect(Topics.connection("gw-001") == "fleet/v1/devices/gw-001/connection")
        #expect(Topics.deviceId(inTopic: "fleet/v1/devices/gw-9/reported") == "gw-9")
        #expect(Topics.deviceId(inTopic: "fleet/v1/devices//reported") == nil)
        #expect(Topics.deviceId(inTopic: "fleet/v2/devices/gw-9/reported") == nil)
        #expect(Topics.deviceId(inTopic: "fleet/v1/devices/gw-9/reported/extra") == nil)
    }

    @Test func contentDigestParsesOnlyWellFormedText() throws {
        let digest = ContentDigest(of: Data("abc".utf8))
        #expect(digest.description == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(ContentDigest(digest.description) == digest)
        #expect(ContentDigest("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD") == nil)
        #expect(ContentDigest("md5:abc") == nil)
        #expect(ContentDigest("sha256:abc") == nil)
        #expect(throws: DecodingError.self) {
            try FleetJSON.decode([ContentDigest].self, from: Data(#"["sha256:xyz"]"#.utf8))
        }
    }

    @Test func fileDigestMatchesTheInMemoryDigest() throws {
        let folder = try TemporaryDirectory()
        let data = Data((0..<3_000_000).map { UInt8($0 % 251) })
        try data.write(to: folder.url.appendingPathComponent("big"))
        #expect(try ContentDigest(ofFileAt: folder.url.appendingPathComponent("big")) == ContentDigest(of: data))
    }

    @Test func healthReportRoundTripsWithTheDocumentedFieldNames() throws {
        let report = HealthReport(
            deviceId: "gw-001", at: Date(timeIntervalSince1970: 1_795_000_000), runtimeVersion: "0.1.0",
            uptimeSeconds: 3600, desired: DesiredStateStatus(revision: 7, status: .rolledBack, error: "crash loop"),
            modules: [ModuleHealth(
                name: "iris", bundleDigest: ContentDigest(of: Data()), status: .backoff, restarts: 3, lastExitCode: 1,
                inference: InferenceStats(count: 1200, errors: 0, p50Ms: 0.8, p99Ms: 2.1))],
            system: SystemHealth(cpuPercent: 12.5, memUsedBytes: 1, memTotalBytes: 2, diskFreeBytes: 3),
            telemetry: TelemetryHealth(buffered: 340, oldestAgeSeconds: 12, uploaded: 51234, dropped: 0))
        let data = try FleetJSON.encode(report)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""status":"rolled-back""#))
        #expect(text.contains(#""p50Ms":0.8"#))
        #expect(try FleetJSON.decode(HealthReport.self, from: data) == report)
    }

    @Test func desiredStateUsesTheContractSpellings() throws {
        let module = ModuleSpec(
            name: "iris", kind: .pythonScoring,
            bundle: BundleReference(digest: ContentDigest(of: Data()), size: 1, url: "u"), restartPolicy: .onFailure)
        let text = String(decoding: try FleetJSON.encode(module), as: UTF8.self)
        #expect(text.contains(#""kind":"python-scoring""#))
        #expect(text.contains(#""restartPolicy":"on-failure""#))
        #expect(text.contains(#""desiredStatus":"running""#))
    }

    @Test func telemetryRecordCarriesAnyJSON() throws {
        let record = TelemetryRecord(
            ts: Date(timeIntervalSince1970: 0), deviceId: "gw", module: "iris", kind: .custom, seq: 42,
            data: .object(["temp": .number(21.5), "tags": .array([.string("a"), .bool(true), .null])]))
        let data = try FleetJSON.encode(record)
        #expect(String(decoding: data, as: UTF8.self)
            == #"{"data":{"tags":["a",true,null],"temp":21.5},"deviceId":"gw","kind":"custom","module":"iris","seq":42,"ts":"1970-01-01T00:00:00Z"}"#)
        #expect(try FleetJSON.decode(TelemetryRecord.self, from: data) == record)
    }

    @Test func brokerURLsParseWithDefaultPorts() throws {
        #expect(try BrokerAddress("mqtt://127.0.0.1") == BrokerAddress(host: "127.0.0.1", port: 1883, tls: false))
        #expect(try BrokerAddress("mqtts://hub.example:9883") == BrokerAddress(host: "hub.example", port: 9883, tls: true))
        #expect(try BrokerAddress("mqtts://hub.example").port == 8883)
        for bad in ["http://x:1883", "mqtt://", "127.0.0.1:1883", "mqtt://h:1883/path"] {
            #expect(throws: ConfigError.badBrokerURL(bad)) { try BrokerAddress(bad) }
        }
    }

    @Test func deviceConfigRoundTripsThroughASecretFile() throws {
        let folder = try TemporaryDirectory()
        let config = DeviceConfig(
            deviceId: "gw-001", broker: BrokerSettings(url: "mqtt://127.0.0.1:1883", username: "gw-001", password: "s3cret"),
            hub: HubSettings(publicKey: HubSigningKey().publicKey.base64, bundleBaseURL: "http://127.0.0.1:8080"),
            dataDir: folder.file("data"), reportIntervalSeconds: 30)
        let path = folder.file("gw-001.yaml")
        try config.save(to: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try DeviceConfig.load(from: path) == config)
    }

    @Test func badDeviceConfigsNameTheFileAndTheProblem() throws {
        let folder = try TemporaryDirectory()
        #expect(throws: ConfigError.self) { try DeviceConfig.load(from: folder.file("missing.yaml")) }
        let path = folder.file("bad.yaml")
        try "deviceId: gw/1\nbroker: {url: 'mqtt://h'}\nhub: {publicKey: k, bundleBaseURL: u}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try DeviceConfig.load(from: path)
            Issue.record("a device id with '/' was accepted")
        } catch let error as ConfigError {
            #expect("\(error)".contains(path))
            #expect("\(error)".contains("gw/1"))
        }
        try "deviceId: gw-1\nbroker: {}\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try DeviceConfig.load(from: path) }
    }
}
