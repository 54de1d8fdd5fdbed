import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// The real `fleethub` executable, as an operator runs it, against a real mosquitto;
/// `mosquitto_sub` plays the device.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct CommandLineTests {
    static let executable = Fixtures.builtExecutable("fleethub")

    @Test func publishingToAStoppedTLSBrokerFailsAtOnceSayingRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "fleethub-refused")
        let workspace = directory.file("hub")
        func hub(_ arguments: String...) throws -> String {
            try Fixtures.run(Self.executable, try HubTestDatabase.arguments(arguments) + ["--workspace", workspace])
        }
        _ = try hub("init", "--broker", "mqtts://127.0.0.1:\(try Fixtures.freePort())")
        let started = ContinuousClock.now
        do {
            _ = try hub("device", "add", "gw-1", "--out", directory.file("gw-1.yaml"))
            Issue.record("publishing to a stopped broker succeeded")
        } catch let FixtureError.commandFailed(_, _, stderr) {
            #expect(stderr.lowercased().contains("connection refused"), "\(stderr)")
            #expect(stderr.contains("fleethub publish"), "\(stderr)")
        }
        #expect(ContinuousClock.now - started < .seconds(2), "device add took \(ContinuousClock.now - started)")
    }

    @Test func deviceAddKeepsOtherConfigsAndLeavesNothingWhenItFailsAndDeviceConfigExportsAgain() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let directory = try TemporaryDirectory(prefix: "fleethub-device-files")
        let workspace = directory.file("hub")
        func hub(_ arguments: String...) throws -> String {
            try Fixtures.run(Self.executable, try HubTestDatabase.arguments(arguments) + ["--workspace", workspace])
        }
        _ = try hub("init", "--broker", broker.url, "--public-url", "http://127.0.0.1:8080", "--insecure", "--insecure-http")
        _ = try hub("device", "add", "gw-001", "--out", directory.file("gw.yaml"))
        let first = try String(contentsOfFile: directory.file("gw.yaml"), encoding: .utf8)
        let original = try DeviceConfig.load(from: directory.file("gw.yaml"))

        // Another device's config is not replaced, and the refused device is not registered.
        do {
            _ = try hub("device", "add", "gw-002", "--out", directory.file("gw.yaml"))
            Issue.record("device add replaced an existing config")
        } catch let FixtureError.commandFailed(_, _, stderr) {
            #expect(stderr.contains("gw.yaml already exists"), "\(stderr)")
            #expect(stderr.contains("--force"), "\(stderr)")
        }
        #expect(try String(contentsOfFile: directory.file("gw.yaml"), encoding: .utf8) == first)
        // A config that cannot be written registers nothing.
        try Data().write(to: URL(fileURLWithPath: directory.file("a-file")))
        #expect(throws: FixtureError.self) { try hub("device", "add", "gw-003", "--out", directory.file("a-file/gw-003.yaml")) }
        let devices = try FleetJSON.decode([Device].self, from: Data(hub("device", "list", "--json").utf8))
        #expect(devices.map(\.id) == ["gw-001"])
        _ = try hub("device", "add", "gw-003", "--out", directory.file("gw-003.yaml"))
        _ = try hub("device", "add", "gw-002", "--out", directory.file("gw.yaml"), "--force")
        #expect(try DeviceConfig.load(from: directory.file("gw.yaml")).deviceId == "gw-002")

        // gw-001's config is lost: export it again, with a new broker password and the data dir given again.
        #expect(throws: FixtureError.self) { try hub("device", "config", "gw-404", "--out", directory.file("gw-404.yaml")) }
        #expect(!FileManager.default.fileExists(atPath: directory.file("gw-404.yaml")))
        _ = try hub("device", "config", "gw-001", "--out", directory.file("gw-001.yaml"), "--data-dir", directory.file("data"))
        let exported = try DeviceConfig.load(from: directory.file("gw-001.yaml"))
        #expect(exported.deviceId == "gw-001")
        #expect(exported.dataDir == directory.file("data"))
        #expect(exported.hub == original.hub, "the plain hub's token is bound to the device, not to a certificate")
        #expect(exported.broker.password != nil && exported.broker.password != original.broker.password)
        // The exported login is the one the broker files now hold.
        _ = try hub("broker", "files", "--out", directory.file("broker"))
        let passwords = try String(contentsOfFile: directory.file("broker/passwords"), encoding: .utf8)
        let line = try #require(passwords.split(separator: "\n").first { $0.hasPrefix("gw-001:") })
        let stored = String(line.dropFirst("gw-001:".count))
        let salt = try #require(Data(base64Encoded: String(stored.split(separator: "$")[2])))
        #expect(try BrokerCredentials.mosquittoHash(of: #require(exported.broker.password), salt: salt) == stored)
    }

    @Test func modelTagModuleDeleteLatestVersionsAndTagFilters() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let directory = try TemporaryDirectory(prefix: "fleethub-commands")
        let workspace = directory.file("hub")
        func hub(_ arguments: String...) throws -> String {
            try Fixtures.run(Self.executable, try HubTestDatabase.arguments(arguments) + ["--workspace", workspace])
        }
        _ = try hub("init", "--broker", broker.url, "--insecure")
        try Data("weights".utf8).write(to: URL(fileURLWithPath: directory.file("iris.onnx")))
        try FileManager.default.createDirectory(atPath: directory.file("src"), withIntermediateDirectories: true)
        try Data("def init():\n    pass\n\ndef run(raw_data):\n    return raw_data\n".utf8)
            .write(to: URL(fileURLWithPath: directory.file("src/score.py")))
        _ = try hub("model", "register", "--name", "iris", "--path", directory.file("iris.onnx"), "--tag", "owner=ana")
        _ = try hub("model", "register", "--name", "iris", "--path", directory.file("iris.onnx"))

        // NAME is the latest version, for tag, download and package alike.
        #expect(try hub("model", "tag", "iris", "--tag", "stage=prod") == "iris:2 tags: stage=prod\n")
        #expect(try hub("model", "tag", "iris:1", "--tag", "stage=old", "--untag", "owner") == "iris:1 tags: stage=old\n")
        let prod = try FleetJSON.decode([ModelVersion].self, from: Data(hub("model", "list", "--tag", "stage=prod", "--json").utf8))
        #expect(prod.map(\.reference) == ["iris:2"])
        #expect(try hub("model", "download", "iris", "--to", directory.file("latest")).contains("of iris:2"))
        #expect(FileManager.default.fileExists(atPath: directory.file("latest/iris.onnx")))
        _ = try hub("module", "package", "--name", "scorer", "--model", "iris", "--entry", "score.py", "--source", directory.file("src"))
        let module = try FleetJSON.decode(ModuleVersion.self, from: Data(hub("module", "show", "scorer", "--json").utf8))
        #expect(module.manifest.models.map(\.version) == [2])

        // A deployed module version cannot be deleted; an undeployed one can.
        _ = try hub("module", "package", "--name", "scorer", "--model", "iris:1", "--entry", "score.py", "--source", directory.file("src"))
        try "name: d\ntarget: \"*\"\nmodules:\n  - name: s\n    bundle: scorer:1\n".write(toFile: directory.file("d.yaml"), atomically: true, encoding: .utf8)
        _ = try hub("deploy", directory.file("d.yaml"))
        do {
            _ = try hub("module", "delete", "scorer:1")
            Issue.record("deleted a deployed module version")
        } catch let FixtureError.commandFailed(_, _, stderr) {
            #expect(stderr.contains("module scorer:1 is used by deployment(s) d"), "\(stderr)")
        }
        #expect(try hub("module", "delete", "scorer:2") == "deleted scorer:2\n")
        let modules = try FleetJSON.decode([ModuleVersion].self, from: Data(hub("module", "list", "--json").utf8))
        #expect(modules.map(\.reference) == ["scorer:1"])

        // --tag and --target on the lists of devices.
        _ = try hub("device", "add", "gw-1", "--tag", "site=a", "--tag", "role=gateway", "--out", directory.file("gw-1.yaml"))
        _ = try hub("device", "add", "gw-2", "--tag", "site=b", "--tag", "role=gateway", "--out", directory.file("gw-2.yaml"))
        _ = try hub("device", "add", "cam-1", "--tag", "site=a", "--tag", "role=camera", "--out", directory.file("cam-1.yaml"))
        let siteA = try FleetJSON.decode([Device].self, from: Data(hub("device", "list", "--tag", "site=a", "--json").utf8))
        #expect(siteA.map(\.id) == ["cam-1", "gw-1"])
        let gateways = try FleetJSON.decode(
            [DeviceHealthSummary].self, from: Data(hub("devices", "--target", "role=gateway AND site!=a", "--json").utf8))
        #expect(gateways.map(\.id) == ["gw-2"])
        #expect(throws: FixtureError.self) { try hub("devices", "--target", "site in (") }
    }

    @Test func operatorWorkflowPublishesASignedRetainedState() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let directory = try TemporaryDirectory(prefix: "fleethub-cli")
        let workspace = directory.file("hub")
        func hub(_ arguments: String...) throws -> String {
            try Fixtures.run(Self.executable, try HubTestDatabase.arguments(arguments) + ["--workspace", workspace])
        }
        try Data("weights".utf8).write(to: URL(fileURLWithPath: directory.file("iris.onnx")))
        try FileManager.default.createDirectory(atPath: directory.file("src"), withIntermediateDirectories: true)
        try Data("def init():\n    pass\n\ndef run(raw_data):\n    return raw_data\n".utf8)
            .write(to: URL(fileURLWithPath: directory.file("src/score.py")))

        _ = try hub("init", "--broker", broker.url, "--public-url", "http://127.0.0.1:8080", "--insecure", "--insecure-http")
        #expect(throws: FixtureError.self) { try hub("init") }
        #expect(try hub("model", "register", "--name", "iris", "--path", directory.file("iris.onnx"), "--tag", "stage=prod") == "iris:1\n")
        let packaged = try hub("module", "package", "--name", "iris-scorer", "--model", "iris:1", "--entry", "score.py", "--source", directory.file("src"))
        #expect(packaged.hasPrefix("iris-scorer:1 sha256:"))
        _ = try hub("device", "add", "gw-001", "--tag", "site=plant-1", "--tag", "role=gateway", "--out", directory.file("gw-001.yaml"))
        let manifest = "name: iris-prod\npriority: 10\ntarget: site in (plant-1, plant-3) AND role=gateway\nmodules:\n  - name: iris\n    bundle: iris-scorer:1\n"
        try manifest.write(toFile: directory.file("iris.yaml"), atomically: true, encoding: .utf8)
        _ = try hub("deploy", directory.file("iris.yaml"))

        let models = try FleetJSON.decode([ModelVersion].self, from: Data(hub("model", "list", "--json").utf8))
        #expect(models.map(\.reference) == ["iris:1"])
        let devices = try FleetJSON.decode([Device].self, from: Data(hub("device", "list", "--json").utf8))
        #expect(devices.map(\.publishedRevision) == [2])

        let config = try DeviceConfig.load(from: directory.file("gw-001.yaml"))
        #expect(config.localAPI == nil && config.storage == nil && config.dataDir == nil)

        // Data dir, local API and storage go into the device config; the secret stays in its file.
        _ = try hub(
            "device", "add", "gw-002", "--tag", "site=plant-2", "--out", directory.file("gw-002.yaml"),
            "--data-dir", directory.file("gw-002-data"), "--local-api", "127.0.0.1:9876",
            "--storage", "s3://telemetry/fleet", "--storage-endpoint", "http://127.0.0.1:8333",
            "--storage-region", "eu-west-1", "--storage-credentials", directory.file("aws-credentials"))
        let second = try DeviceConfig.load(from: directory.file("gw-002.yaml"))
        #expect(second.dataDir == directory.file("gw-002-data"))
        #expect(second.localAPI == LocalAPISettings(host: "127.0.0.1", port: 9876))
        #expect(
            second.storage
                == StorageSettings(
                    url: "s3://telemetry/fleet", endpoint: "http://127.0.0.1:8333", region: "eu-west-1",
                    credentialsFile: directory.file("aws-credentials")))
        #expect(throws: FixtureError.self) {
            try hub("device", "add", "gw-003", "--out", directory.file("gw-003.yaml"), "--storage-region", "eu-west-1")
        }
        #expect(throws: FixtureError.self) {
            try hub("device", "add", "gw-003", "--out", directory.file("gw-003.yaml"), "--local-api", "nohost")
        }
        let subscriber = try #require(Fixtures.which("mosquitto_sub"))
        let envelope = try Fixtures.run(
            subscriber, ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", Topics.desired("gw-001"), "-C", "1", "-W", "5"])
        let state = try HubPublicKey(base64: config.hub.publicKey).open(Data(envelope.trimmingCharacters(in: .newlines).utf8), for: "gw-001")
        #expect(state.revision == 2)
        #expect(state.modules.map(\.name) == ["iris"])
        #expect(state.modules.first?.bundle.url.hasPrefix("http://127.0.0.1:8080/v1/bundles/sha256:") == true)

        #expect(throws: FixtureError.self) { try hub("model", "delete", "iris:1") }
        do {
            _ = try hub("deploy", directory.file("missing.yaml"))
            Issue.record("deploying a missing file succeeded")
        } catch let FixtureError.commandFailed(_, status, stderr) {
            #expect(status != 0)
            #expect(stderr.contains("missing.yaml"))
        }
    }
}
