import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// Every entry point of the hub refuses a name that breaks `FleetName`'s rule, with
/// an error naming the value and the rule: the library's registries, the manifest
/// parser and the `fleethub` command line.
struct NamingRuleTests {
    @Test func theRegistriesRefuseBadNames() throws {
        let hub = try HubFixture()
        let file = try hub.write("iris.onnx", "weights")
        for id in [".", "..", "-rf", ".hidden"] {
            #expect(throws: FleetNameError.invalid(id, kind: .deviceId)) { try hub.devices.add(id: id, tags: [:]) }
            #expect(throws: FleetNameError.invalid(id, kind: .model)) { try hub.models.register(name: id, paths: [file]) }
        }
        let model = try hub.models.register(name: "iris", paths: [file])
        try hub.write("src/score.py", "def init():\n    pass\n")
        #expect(throws: FleetNameError.invalid("..", kind: .module)) {
            try hub.modules.package(PackageRequest(
                name: "..", kind: .pythonScoring, model: VersionedName(name: model.name, version: model.version),
                entry: "score.py", source: hub.directory.url.appendingPathComponent("src")))
        }
    }

    @Test func theManifestParserRefusesBadDeploymentAndModuleNames() throws {
        let rule = FleetName.rule
        #expect(throws: ManifestError.invalid(
            file: "m.yaml", line: 1, field: "name", problem: "'..' is not a valid deployment name: use \(rule)")
        ) {
            try ManifestParser.parse("name: ..\npriority: 1\ntarget: '*'\nmodules:\n  - name: iris\n    bundle: iris-scorer:1\n", file: "m.yaml")
        }
        #expect(throws: ManifestError.invalid(
            file: "m.yaml", line: 5, field: "modules[0].name", problem: "'.hidden' is not a valid module name: use \(rule)")
        ) {
            try ManifestParser.parse("name: prod\npriority: 1\ntarget: '*'\nmodules:\n  - name: .hidden\n    bundle: iris-scorer:1\n", file: "m.yaml")
        }
    }

    @Test func theCommandLineRefusesADotDotDeviceId() throws {
        let directory = try TemporaryDirectory(prefix: "fleethub-names")
        let workspace = directory.file("hub")
        _ = try Fixtures.run(
            CommandLineTests.executable,
            try HubTestDatabase.arguments(["init", "--broker", "mqtt://127.0.0.1:1", "--public-url", "http://127.0.0.1:8080", "--insecure", "--insecure-http"])
                + ["--workspace", workspace])
        #expect {
            try Fixtures.run(CommandLineTests.executable, ["device", "add", "..", "--out", directory.file("d.yaml"), "--workspace", workspace])
        } throws: { error in
            "\(error)".contains("'..' is not a valid device id: use \(FleetName.rule)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.file("d.yaml")))
    }
}
