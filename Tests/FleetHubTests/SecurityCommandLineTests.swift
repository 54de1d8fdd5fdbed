import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// The operator's secure workflow with the real `fleethub` executable and a real
/// mosquitto running the configuration `broker-config` wrote: init with a CA, add
/// devices, deploy over TLS, revoke. Then every line the commands and the broker
/// printed, and every non-secret file written, is searched for every secret.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct SecurityCommandLineTests {
    @Test func aTLSFleetRunsAndNoSecretLeaksIntoOutputOrLogs() async throws {
        let directory = try TemporaryDirectory(prefix: "fleethub-secure-cli")
        let workspace = directory.file("hub")
        let port = try Fixtures.freePort()
        var transcript = ""
        /// Runs `fleethub ARGUMENTS`, adding both of its output streams to the transcript.
        func hub(_ arguments: String...) async throws -> String {
            let log = directory.file("command-\(UUID().uuidString).log")
            let process = try ChildProcess(
                CommandLineTests.executable, try HubTestDatabase.arguments(arguments) + ["--workspace", workspace], outputPath: log)
            let status = try await process.waitForExit()
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            transcript += output
            guard status == 0 else {
                throw FixtureError.commandFailed("fleethub \(arguments.joined(separator: " "))", status: status, stderr: output)
            }
            return output
        }
        try Data("weights".utf8).write(to: URL(fileURLWithPath: directory.file("iris.onnx")))
        try Data("def init():\n    pass\n\ndef run(raw_data):\n    return raw_data\n".utf8)
            .write(to: URL(fileURLWithPath: directory.file("score.py")))
        try FileManager.default.createDirectory(atPath: directory.file("devices"), withIntermediateDirectories: true)

        _ = try await hub("init", "--broker", "mqtts://127.0.0.1:\(port)", "--public-url", "https://127.0.0.1:8080")
        _ = try await hub("model", "register", "--name", "iris", "--path", directory.file("iris.onnx"))
        _ = try await hub("module", "package", "--name", "iris-scorer", "--model", "iris:1", "--entry", directory.file("score.py"))
        // The broker's configuration does not list devices: it needs no rewrite when one is added.
        _ = try await hub("broker-config", "--out", directory.file("broker"), "--listen", "127.0.0.1:\(port)", "--run-as", NSUserName())
        let broker = try await TLSBroker.start(configFile: directory.file("broker/mosquitto.conf"), port: port)
        defer { broker.stop() }
        for id in ["gw-a", "gw-b"] {
            _ = try await hub("device", "add", id, "--tag", "site=x", "--out", directory.file("devices/\(id).yaml"))
        }

        try "name: prod\npriority: 1\ntarget: site=x\nmodules:\n  - name: iris\n    bundle: iris-scorer:1\n"
            .write(toFile: directory.file("prod.yaml"), atomically: true, encoding: .utf8)
        #expect(try await hub("deploy", directory.file("prod.yaml")).contains("published desired state to 2 device(s): gw-a, gw-b"))
        _ = try await hub("device", "list", "--json")
        _ = try await hub("device", "show", "gw-a", "--json")
        _ = try await hub("config", "show", "--json")
        _ = try await hub("config", "show")
        #expect(try await hub("device", "revoke", "gw-b").contains("published desired state to 1 device(s): gw-b"))
        _ = try await hub("broker-config", "--out", directory.file("broker"), "--listen", "127.0.0.1:\(port)", "--run-as", NSUserName())
        try await broker.restart()
        _ = try await hub("publish")

        let device = try DeviceConfig.load(from: directory.file("devices/gw-a.yaml"))
        #expect(device.broker.url == "mqtts://127.0.0.1:\(port)")
        let access = try FleetJSON.decode(HTTPAccess.self, from: Data(contentsOf: URL(fileURLWithPath: workspace + "/http-access.json")))

        var secrets = [access.adminToken, access.viewerToken, try #require(device.hub.token)]
        let keyFiles = ["hub/ca/ca.key", "hub/ca/hub.key", "hub/ca/broker.key", "devices/gw-a.key", "devices/gw-b.key", "hub/hub-signing.key"]
        for file in keyFiles {
            let text = try String(contentsOfFile: directory.file(file), encoding: .utf8)
            // Every base64 line of a PEM key; the signing key is one base64 line.
            secrets += text.split(separator: "\n").filter { !$0.hasPrefix("-----") && $0.count > 16 }.map(String.init)
        }
        let looked = [
            "the commands' output": transcript,
            "the broker's log": broker.log,
            "mosquitto.conf": try String(contentsOfFile: directory.file("broker/mosquitto.conf"), encoding: .utf8),
            "acl": try String(contentsOfFile: directory.file("broker/acl"), encoding: .utf8),
        ]
        #expect(transcript.contains("published desired state"), "the transcript is empty")
        #expect(broker.log.contains("u'\(HubIdentity.commands.rawValue)'"), "the broker log shows no hub connection")
        for (place, text) in looked {
            for secret in secrets {
                #expect(!text.contains(secret), "a secret (\(secret.prefix(4))…) appears in \(place)")
            }
        }
    }
}
