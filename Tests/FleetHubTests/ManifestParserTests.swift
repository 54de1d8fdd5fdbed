import FleetCore
import FleetHub
import Foundation
import Testing

struct ManifestParserTests {
    /// The repository's `manifests/` folder.
    static let manifests = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("manifests")

    let valid = """
        name: iris-prod
        priority: 10
        target: site in (plant-1, plant-3)
        modules:
          - name: iris
            bundle: iris-scorer:1
            restartPolicy: on-failure
            workers: 2
            env:
              LOG_LEVEL: info
            telemetry:
              sampleRate: 0.5
              collectInputs: true
        """

    func error(_ text: String) -> String {
        do {
            _ = try ManifestParser.parse(text, file: "m.yaml")
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func parsesAllFieldsWithDefaults() throws {
        let manifest = try ManifestParser.parse(valid, file: "m.yaml").manifest
        #expect(manifest.name == "iris-prod")
        #expect(manifest.priority == 10)
        let module = try #require(manifest.modules.first)
        #expect(module.bundle == "iris-scorer:1")
        #expect(module.desiredStatus == .running)
        #expect(module.restartPolicy == .onFailure)
        #expect(module.workers == 2)
        #expect(module.startupOrder == 0)
        #expect(module.env == ["LOG_LEVEL": "info"])
        #expect(module.telemetry == TelemetrySettings(sampleRate: 0.5, collectInputs: true, collectOutputs: false))
    }

    @Test func unknownFieldIsRefusedWithFileLineAndField() {
        let text = valid.replacingOccurrences(of: "    workers: 2", with: "    workerz: 2")
        #expect(error(text).hasPrefix("m.yaml:8: field 'modules[0].workerz': unknown field"))
        #expect(error("name: x\npriority: 1\ntarget: a=b\nmodules: []\nextra: 1\n").contains("m.yaml:5: field 'extra': unknown field"))
    }

    @Test func wrongTypesNameTheField() {
        #expect(error(valid.replacingOccurrences(of: "priority: 10", with: "priority: high"))
            == "m.yaml:2: field 'priority': expected an integer, found 'high'")
        #expect(error(valid.replacingOccurrences(of: "on-failure", with: "sometimes"))
            .hasPrefix("m.yaml:7: field 'modules[0].restartPolicy': 'sometimes' is not one of"))
        #expect(error(valid.replacingOccurrences(of: "sampleRate: 0.5", with: "sampleRate: 2"))
            .hasPrefix("m.yaml:12: field 'modules[0].telemetry.sampleRate'"))
        #expect(error(valid.replacingOccurrences(of: "iris-scorer:1", with: "iris-scorer"))
            .hasPrefix("m.yaml:6: field 'modules[0].bundle'"))
    }

    @Test func malformedYAMLNamesTheFileAndLine() {
        let message = error("name: [iris\npriority: 1\n")
        #expect(message.hasPrefix("m.yaml: malformed YAML:"))
        #expect(message.contains("line 1"))
        #expect(error("name: x\npriority: 1\ntarget: *\n").contains("quote the star"))
    }

    @Test func aDuplicateKeyNamesItsLineWithoutQuotingTheFile() {
        let top = error("name: a\npriority: 1\ntarget: \"*\"\nname: b\nmodules:\n  - name: x\n    bundle: y:1\n")
        #expect(top == "m.yaml:4: field 'name': given twice in the same mapping (first on line 1); keep one")
        let nested = error("name: a\ntarget: \"*\"\nmodules:\n  - name: x\n    bundle: y:1\n    # again\n    bundle: z:1\n  - name: q\n    bundle: y:1\n")
        #expect(nested == "m.yaml:7: field 'bundle': given twice in the same mapping (first on line 5); keep one")
    }

    @Test func telemetryDriftTakesAutoOrNamesAndAWindow() throws {
        func drift(_ line: String) throws -> DriftSettings? {
            let text = valid.replacingOccurrences(of: "      collectInputs: true", with: "      collectInputs: true\n      drift: \(line)")
            return try ManifestParser.parse(text, file: "m.yaml").manifest.modules[0].telemetry.drift
        }
        #expect(try drift("{features: auto, windowSeconds: 60}") == DriftSettings(features: .auto, windowSeconds: 60))
        #expect(try drift("{features: [sepal_length, petal_width]}") == DriftSettings(features: .named(["sepal_length", "petal_width"]), windowSeconds: 300))
        #expect(try ManifestParser.parse(valid, file: "m.yaml").manifest.modules[0].telemetry.drift == nil)
        let bad = { (line: String) in self.error(self.valid.replacingOccurrences(of: "      collectInputs: true", with: "      collectInputs: true\n      drift: \(line)")) }
        #expect(bad("{features: all}").hasPrefix("m.yaml:14: field 'modules[0].telemetry.drift.features': expected auto or a list of feature names, found 'all'"))
        #expect(bad("{windowSeconds: 0}").hasPrefix("m.yaml:14: field 'modules[0].telemetry.drift.windowSeconds': must be at least 1"))
        #expect(bad("{window: 5}").contains("field 'modules[0].telemetry.drift.window': unknown field"))
    }

    @Test func priorityDefaultsToZero() throws {
        let manifest = try ManifestParser.parse("name: a\ntarget: \"*\"\nmodules:\n  - name: x\n    bundle: y:1\n", file: "m.yaml").manifest
        #expect(manifest.priority == 0)
    }

    @Test func telemetryFormatIsFleetUnlessAzureMLIsAskedForAndAnUnknownOneNamesTheAllowedValues() throws {
        let parsed = try ManifestParser.parse(valid, file: "m.yaml").manifest.modules[0].telemetry
        #expect(parsed.format == nil)
        let azureml = valid.replacingOccurrences(of: "collectInputs: true", with: "collectInputs: true\n      format: azureml")
        #expect(try ManifestParser.parse(azureml, file: "m.yaml").manifest.modules[0].telemetry
            == TelemetrySettings(sampleRate: 0.5, collectInputs: true, format: .azureml))
        let fleet = valid.replacingOccurrences(of: "collectInputs: true", with: "collectInputs: true\n      format: fleet")
        #expect(try ManifestParser.parse(fleet, file: "m.yaml").manifest.modules[0].telemetry.format == .fleet)
        let unknown = valid.replacingOccurrences(of: "collectInputs: true", with: "collectInputs: true\n      format: mlflow")
        #expect(error(unknown) == "m.yaml:14: field 'modules[0].telemetry.format': 'mlflow' is not one of fleet|azureml")
        let nothing = valid.replacingOccurrences(of: "collectInputs: true", with: "format: azureml")
        #expect(error(nothing).hasPrefix("m.yaml:13: field 'modules[0].telemetry.format': azureml records only"))
    }

    @Test func missingFieldsAndDuplicatesAreRefused() throws {
        #expect(error("name: x\npriority: 1\nmodules: []\n") == "m.yaml: field 'target': missing")
        // Without a priority a deployment layers at 0.
        #expect(try ManifestParser.parse("name: x\ntarget: a=b\nmodules:\n  - name: m\n    bundle: m:1\n", file: "m.yaml").manifest.priority == 0)
        #expect(error("name: x\npriority: 1\ntarget: a=b\nmodules: []\n").hasPrefix("m.yaml:4: field 'modules'"))
        let duplicate = valid + "\n  - name: iris\n    bundle: other:1\n"
        #expect(error(duplicate).hasPrefix("m.yaml:14: field 'modules[1].name': duplicate module name 'iris'"))
        #expect(error(valid.replacingOccurrences(of: "site in (plant-1, plant-3)", with: "site in plant-1"))
            .hasPrefix("m.yaml:3: field 'target'"))
    }

    @Test func theShippedExamplesParse() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.manifests.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 2)
        for file in files {
            let parsed = try ManifestParser.parse(fileAt: Self.manifests.appendingPathComponent(file).path)
            #expect(!parsed.manifest.modules.isEmpty)
        }
    }

    /// The JSON Schema and the parser accept the same fields.
    @Test func theSchemaNamesExactlyTheParsedFields() throws {
        let data = try Data(contentsOf: Self.manifests.appendingPathComponent("deployment.schema.json"))
        let schema = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let top = try #require(schema["properties"] as? [String: Any])
        let module = try #require(((schema["$defs"] as? [String: Any])?["module"] as? [String: Any])?["properties"] as? [String: Any])
        let telemetry = try #require((module["telemetry"] as? [String: Any])?["properties"] as? [String: Any])
        let definitions = try #require(schema["$defs"] as? [String: Any])
        let rollout = try #require((definitions["rollout"] as? [String: Any])?["properties"] as? [String: Any])
        let abort = try #require((rollout["abort"] as? [String: Any])?["properties"] as? [String: Any])
        let promote = try #require((rollout["promoteWhen"] as? [String: Any])?["properties"] as? [String: Any])
        let shadow = try #require((module["shadow"] as? [String: Any])?["properties"] as? [String: Any])
        #expect(Set(top.keys) == ["name", "priority", "target", "modules", "rollout"])
        #expect(Set(module.keys) == ["name", "bundle", "desiredStatus", "restartPolicy", "startupOrder", "workers", "env", "telemetry", "shadow"])
        #expect(Set(telemetry.keys) == ["sampleRate", "collectInputs", "collectOutputs", "format", "drift"])
        let drift = try #require((telemetry["drift"] as? [String: Any])?["properties"] as? [String: Any])
        #expect(Set(drift.keys) == ["features", "windowSeconds"])
        #expect(Set(shadow.keys) == ["bundle", "sampleRate", "workers"])
        #expect(Set(rollout.keys) == ["waves", "canaryFirst", "soakSeconds", "abort", "onAbort", "promoteWhen"])
        #expect(Set(abort.keys) == ["failedPercent", "minDevices", "errorRateFactor", "p99Factor", "timeoutSeconds"])
        #expect(Set(promote.keys) == ["shadowAgreement", "minSamples"])
    }
}
