import FleetCore
import Foundation
import Yams

/// Reads deployment manifests from YAML, field by field, so that every error names
/// the file, the line and the field, and unknown fields are refused rather than ignored.
public enum ManifestParser {
    static let topFields: Set<String> = ["name", "priority", "target", "modules", "rollout"]
    static let moduleFields: Set<String> = [
        "name", "bundle", "desiredStatus", "restartPolicy", "startupOrder", "workers", "env", "telemetry", "shadow",
    ]
    static let shadowFields: Set<String> = ["bundle", "sampleRate", "workers"]
    static let rolloutFields: Set<String> = ["waves", "canaryFirst", "soakSeconds", "abort", "onAbort", "promoteWhen"]
    static let abortFields: Set<String> = ["failedPercent", "minDevices", "errorRateFactor", "p99Factor", "timeoutSeconds"]
    static let promoteFields: Set<String> = ["shadowAgreement", "minSamples"]
    static let telemetryFields: Set<String> = ["sampleRate", "collectInputs", "collectOutputs", "format", "drift"]
    static let driftFields: Set<String> = ["features", "windowSeconds"]

    public static func parse(fileAt path: String) throws -> ParsedManifest {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ManifestError.unreadable(file: path, reason: error.localizedDescription)
        }
        return try parse(text, file: path)
    }

    /// The error for `key` given twice in the mapping that starts at `mark`: the line
    /// of its second occurrence, found among the lines whose key starts in the
    /// mapping's column, until a line less indented ends the mapping.
    static func duplicateKey(_ key: String, inMappingAt mark: Mark, of text: String, file: String) -> ManifestError {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(Array.init)
        let column = mark.column - 1
        var occurrences: [Int] = []
        for index in max(0, mark.line - 1)..<lines.count {
            let line = lines[index]
            let indentation = line.prefix { $0 == " " }.count
            let blank = line.allSatisfy { $0 == " " } || line.dropFirst(indentation).first == "#"
            if index > mark.line - 1, !blank, indentation < column { break }
            guard line.count > column, line[..<column].allSatisfy({ $0 == " " || $0 == "-" }) else { continue }
            if String(line[column...]).hasPrefix("\(key):") { occurrences.append(index + 1) }
        }
        let problem = occurrences.count > 1
            ? "given twice in the same mapping (first on line \(occurrences[0])); keep one"
            : "given twice in the same mapping; keep one"
        return .invalid(file: file, line: occurrences.count > 1 ? occurrences[1] : nil, field: key, problem: problem)
    }

    public static func parse(_ text: String, file: String) throws -> ParsedManifest {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch YamlError.duplicatedKeysInMapping(let keys, let context) {
            // Yams points at the mapping's first line and quotes all of it.
            throw duplicateKey(keys.sorted().first ?? "", inMappingAt: context.mark, of: text, file: file)
        } catch {
            let detail = "\(error)"
            // `target: *` is the likeliest way to meet YAML aliases by accident.
            let hint = detail.contains("alias") ? "\n(to target every device, quote the star: target: \"*\")" : ""
            throw ManifestError.malformedYAML(file: file, detail: detail + hint)
        }
        var reader = NodeReader(file: file)
        guard let root else { throw ManifestError.invalid(file: file, line: nil, field: "name", problem: "the file is empty") }
        let top = try reader.mapping(root, field: "(document)", allowed: topFields)
        let name = try reader.string(top, "name", field: "name")
        do {
            try FleetName.check(name, as: .deployment)
        } catch {
            throw reader.error("name", top["name"], "\(error)")
        }
        let priority = try reader.int(top, "priority", field: "priority", default: 0)
        let target = try reader.string(top, "target", field: "target", allowEmpty: true)
        do {
            _ = try TargetExpression(parsing: target)
        } catch {
            throw reader.error("target", top["target"], "\(error)")
        }
        guard let modulesNode = top["modules"] else { throw reader.error("modules", nil, "missing; list at least one module") }
        guard let sequence = modulesNode.sequence, !sequence.isEmpty else {
            throw reader.error("modules", modulesNode, "expected a non-empty list of modules")
        }
        var modules: [DeploymentManifest.Module] = []
        var seen: Set<String> = []
        for (index, node) in sequence.enumerated() {
            let prefix = "modules[\(index)]"
            let module = try reader.module(node, prefix: prefix)
            guard seen.insert(module.name).inserted else {
                throw reader.error("\(prefix).name", node.mapping?["name"], "duplicate module name '\(module.name)'")
            }
            modules.append(module)
        }
        let rollout = try top["rollout"].map { try reader.rollout($0, field: "rollout") }
        if let gate = rollout?.promoteWhen, !modules.contains(where: { $0.shadow != nil }) {
            throw reader.error(
                "rollout.promoteWhen", top["rollout"]?.mapping?["promoteWhen"],
                "promotes shadows, but no module names a shadow: add `shadow: {bundle: NAME:VERSION, sampleRate: 0.25}` to a module (or remove promoteWhen \(gate.shadowAgreement))")
        }
        let manifest = DeploymentManifest(name: name, priority: priority, target: target, modules: modules, rollout: rollout)
        return ParsedManifest(manifest: manifest, file: file, text: text, lines: reader.lines)
    }
}

/// Walks a composed YAML tree, recording the line of every field it reads.
struct NodeReader {
    var file: String
    var lines: [String: Int] = [:]

    init(file: String) {
        self.file = file
    }

    func error(_ field: String, _ node: Node?, _ problem: String) -> ManifestError {
        ManifestError.invalid(file: file, line: node?.mark?.line ?? lines[field], field: field, problem: problem)
    }

    mutating func mapping(_ node: Node, field: String, allowed: Set<String>) throws -> Node.Mapping {
        guard let mapping = node.mapping else { throw error(field, node, "expected a mapping of fields") }
        lines[field] = node.mark?.line
        for (key, _) in mapping {
            guard let name = key.string, allowed.contains(name) else {
                let known = allowed.sorted().joined(separator: ", ")
                let fieldName = field == "(document)" ? (key.string ?? "?") : "\(field).\(key.string ?? "?")"
                throw error(fieldName, key, "unknown field; known fields are \(known)")
            }
        }
        return mapping
    }

    mutating func scalar(_ mapping: Node.Mapping, _ key: String, field: String) throws -> Node? {
        guard let node = mapping[key] else { return nil }
        lines[field] = node.mark?.line
        guard node.scalar != nil else { throw error(field, node, "expected a single value") }
        return node
    }

    mutating func string(_ mapping: Node.Mapping, _ key: String, field: String, allowEmpty: Bool = false) throws -> String {
        guard let node = try scalar(mapping, key, field: field) else { throw error(field, nil, "missing") }
        let value = node.scalar?.string ?? ""
        guard allowEmpty || !value.isEmpty else { throw error(field, node, "must not be empty") }
        return value
    }

    mutating func int(_ mapping: Node.Mapping, _ key: String, field: String, default fallback: Int? = nil) throws -> Int {
        guard let node = try scalar(mapping, key, field: field) else {
            guard let fallback else { throw error(field, nil, "missing") }
            return fallback
        }
        guard let value = node.int else { throw error(field, node, "expected an integer, found '\(node.scalar?.string ?? "")'") }
        return value
    }

    mutating func bool(_ mapping: Node.Mapping, _ key: String, field: String) throws -> Bool {
        guard let node = try scalar(mapping, key, field: field) else { return false }
        guard let value = node.bool else { throw error(field, node, "expected true or false, found '\(node.scalar?.string ?? "")'") }
        return value
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(
        _ mapping: Node.Mapping, _ key: String, field: String, default fallback: T
    ) throws -> T where T.RawValue == String {
        guard let node = try scalar(mapping, key, field: field) else { return fallback }
        let text = node.scalar?.string ?? ""
        guard let value = T(rawValue: text) else {
            let known = T.allCases.map(\.rawValue).joined(separator: "|")
            throw error(field, node, "'\(text)' is not one of \(known)")
        }
        return value
    }

    mutating func module(_ node: Node, prefix: String) throws -> DeploymentManifest.Module {
        let fields = try mapping(node, field: prefix, allowed: ManifestParser.moduleFields)
        let name = try string(fields, "name", field: "\(prefix).name")
        do {
            try FleetName.check(name, as: .module)
        } catch let nameError {
            throw error("\(prefix).name", fields["name"], "\(nameError)")
        }
        let bundle = try string(fields, "bundle", field: "\(prefix).bundle")
        guard (try? VersionedName(parsingExact: bundle)) != nil else {
            throw error("\(prefix).bundle", fields["bundle"], "'\(bundle)' is not a packaged module reference name:version (e.g. iris-scorer:1)")
        }
        let workers = try int(fields, "workers", field: "\(prefix).workers", default: 1)
        guard workers >= 1 else { throw error("\(prefix).workers", fields["workers"], "must be at least 1") }
        return DeploymentManifest.Module(
            name: name, bundle: bundle,
            desiredStatus: try choice(fields, "desiredStatus", field: "\(prefix).desiredStatus", default: .running),
            restartPolicy: try choice(fields, "restartPolicy", field: "\(prefix).restartPolicy", default: .always),
            startupOrder: try int(fields, "startupOrder", field: "\(prefix).startupOrder", default: 0),
            workers: workers,
            env: try env(fields["env"], field: "\(prefix).env"),
            telemetry: try telemetry(fields["telemetry"], field: "\(prefix).telemetry"),
            shadow: try fields["shadow"].map { try shadow($0, field: "\(prefix).shadow", live: bundle) })
    }

    mutating func shadow(_ node: Node, field: String, live: String) throws -> DeploymentManifest.Shadow {
        let fields = try mapping(node, field: field, allowed: ManifestParser.shadowFields)
        let bundle = try string(fields, "bundle", field: "\(field).bundle")
        guard (try? VersionedName(parsingExact: bundle)) != nil else {
            throw error("\(field).bundle", fields["bundle"], "'\(bundle)' is not a packaged module reference name:version (e.g. iris-scorer:2)")
        }
        guard bundle != live else {
            throw error("\(field).bundle", fields["bundle"], "the shadow is the live bundle \(live); name the version to evaluate")
        }
        guard let rate = try number(fields, "sampleRate", field: "\(field).sampleRate"), (0...1).contains(rate), rate > 0 else {
            throw error("\(field).sampleRate", fields["sampleRate"], "expected a number above 0 and at most 1 (the share of requests mirrored)")
        }
        let workers = try int(fields, "workers", field: "\(field).workers", default: 1)
        guard workers >= 1 else { throw error("\(field).workers", fields["workers"], "must be at least 1") }
        return DeploymentManifest.Shadow(bundle: bundle, sampleRate: rate, workers: workers)
    }

    /// A number, or nil when the key is absent.
    mutating func number(_ mapping: Node.Mapping, _ key: String, field: String) throws -> Double? {
        guard let node = try scalar(mapping, key, field: field) else { return nil }
        guard let value = node.float else { throw error(field, node, "expected a number, found '\(node.scalar?.string ?? "")'") }
        return value
    }

    mutating func rollout(_ node: Node, field: String) throws -> RolloutPolicy {
        let fields = try mapping(node, field: field, allowed: ManifestParser.rolloutFields)
        guard let wavesNode = fields["waves"] else {
            throw error("\(field).waves", node, "missing; list the waves, e.g. waves: [1, 10%, 50%, 100%]")
        }
        lines["\(field).waves"] = wavesNode.mark?.line
        guard let sequence = wavesNode.sequence, !sequence.isEmpty else {
            throw error("\(field).waves", wavesNode, "expected a non-empty list of device counts or percentages, e.g. [1, 10%, 50%, 100%]")
        }
        var waves: [WaveSize] = []
        for (index, item) in sequence.enumerated() {
            let text = item.scalar?.string ?? ""
            guard let wave = WaveSize(parsing: text) else {
                throw error("\(field).waves[\(index)]", item, "'\(text)' is not a wave size: a device count (1 or more) or a percentage (above 0% up to 100%)")
            }
            if let previous = waves.last(where: { Self.sameUnit($0, wave) }), wave.count(of: 1_000_000) <= previous.count(of: 1_000_000) {
                throw error("\(field).waves[\(index)]", item, "waves must grow: \(wave) does not follow \(previous) (each wave is the total reached so far)")
            }
            waves.append(wave)
        }
        let canary: String? = try fields["canaryFirst"].map { _ in
            let text = try string(fields, "canaryFirst", field: "\(field).canaryFirst")
            do {
                _ = try TargetExpression(parsing: text)
            } catch {
                throw self.error("\(field).canaryFirst", fields["canaryFirst"], "\(error)")
            }
            return text
        }
        let soak = try int(fields, "soakSeconds", field: "\(field).soakSeconds", default: 60)
        guard soak >= 0 else { throw error("\(field).soakSeconds", fields["soakSeconds"], "must be 0 or more seconds") }
        let promote = try fields["promoteWhen"].map { try promotion($0, field: "\(field).promoteWhen") }
        return RolloutPolicy(
            waves: waves, canaryFirst: canary, soakSeconds: soak,
            abort: try fields["abort"].map { try abortCriteria($0, field: "\(field).abort") } ?? AbortCriteria(),
            onAbort: try choice(fields, "onAbort", field: "\(field).onAbort", default: .halt),
            promoteWhen: promote)
    }

    private static func sameUnit(_ a: WaveSize, _ b: WaveSize) -> Bool {
        switch (a, b) {
        case (.devices, .devices), (.percent, .percent): true
        default: false
        }
    }

    mutating func abortCriteria(_ node: Node, field: String) throws -> AbortCriteria {
        let fields = try mapping(node, field: field, allowed: ManifestParser.abortFields)
        var criteria = AbortCriteria()
        if let percent = try number(fields, "failedPercent", field: "\(field).failedPercent") {
            guard (0..<100).contains(percent) else {
                throw error("\(field).failedPercent", fields["failedPercent"], "expected a percentage from 0 to below 100, found \(percent)")
            }
            criteria.failedPercent = percent
        }
        criteria.minDevices = try int(fields, "minDevices", field: "\(field).minDevices", default: 1)
        guard criteria.minDevices >= 1 else { throw error("\(field).minDevices", fields["minDevices"], "must be at least 1") }
        for (key, path) in [("errorRateFactor", \AbortCriteria.errorRateFactor), ("p99Factor", \AbortCriteria.p99Factor)] {
            guard let factor = try number(fields, key, field: "\(field).\(key)") else { continue }
            guard factor >= 1 else {
                throw error("\(field).\(key)", fields[key], "expected a factor of 1 or more (how many times worse than the previous version), found \(factor)")
            }
            criteria[keyPath: path] = factor
        }
        criteria.timeoutSeconds = try int(fields, "timeoutSeconds", field: "\(field).timeoutSeconds", default: 300)
        guard criteria.timeoutSeconds >= 1 else {
            throw error("\(field).timeoutSeconds", fields["timeoutSeconds"], "must be at least 1 second")
        }
        return criteria
    }

    mutating func promotion(_ node: Node, field: String) throws -> PromotionGate {
        let fields = try mapping(node, field: field, allowed: ManifestParser.promoteFields)
        let text = try string(fields, "shadowAgreement", field: "\(field).shadowAgreement")
        guard let comparison = Comparison(parsing: text), (0...1).contains(comparison.value) else {
            throw error("\(field).shadowAgreement", fields["shadowAgreement"], "'\(text)' is not a comparison with a share from 0 to 1, e.g. \">= 0.98\"")
        }
        let samples = try int(fields, "minSamples", field: "\(field).minSamples", default: 100)
        guard samples >= 1 else { throw error("\(field).minSamples", fields["minSamples"], "must be at least 1") }
        return PromotionGate(shadowAgreement: comparison, minSamples: samples)
    }

    mutating func env(_ node: Node?, field: String) throws -> [String: String] {
        guard let node else { return [:] }
        guard let mapping = node.mapping else { throw error(field, node, "expected a mapping of NAME: value") }
        lines[field] = node.mark?.line
        var env: [String: String] = [:]
        for (key, value) in mapping {
            guard let name = key.string, !name.isEmpty, !name.contains("=") else {
                throw error(field, key, "'\(key.string ?? "?")' is not an environment variable name")
            }
            guard let text = value.scalar?.string else {
                throw error("\(field).\(name)", value, "expected a single value")
            }
            env[name] = text
        }
        return env
    }

    mutating func telemetry(_ node: Node?, field: String) throws -> TelemetrySettings {
        guard let node else { return TelemetrySettings() }
        let fields = try mapping(node, field: field, allowed: ManifestParser.telemetryFields)
        var rate = 0.0
        if let rateNode = try scalar(fields, "sampleRate", field: "\(field).sampleRate") {
            guard let value = rateNode.float, (0...1).contains(value) else {
                throw error("\(field).sampleRate", rateNode, "expected a number from 0 to 1, found '\(rateNode.scalar?.string ?? "")'")
            }
            rate = value
        }
        let settings = TelemetrySettings(
            sampleRate: rate,
            collectInputs: try bool(fields, "collectInputs", field: "\(field).collectInputs"),
            collectOutputs: try bool(fields, "collectOutputs", field: "\(field).collectOutputs"),
            format: try fields["format"] == nil ? nil : choice(fields, "format", field: "\(field).format", default: .fleet),
            drift: try fields["drift"].map { try drift($0, field: "\(field).drift") })
        if settings.format == .azureml, settings.sampleRate > 0, !settings.collectInputs, !settings.collectOutputs {
            throw error(
                "\(field).format", fields["format"],
                "azureml records only the model_inputs and model_outputs collections: set collectInputs and/or collectOutputs")
        }
        return settings
    }

    /// `drift: {features: auto, windowSeconds: 300}` (docs/drift.md); `features` may list names.
    mutating func drift(_ node: Node, field: String) throws -> DriftSettings {
        let fields = try mapping(node, field: field, allowed: ManifestParser.driftFields)
        var features = DriftSettings.Features.auto
        if let list = fields["features"], let items = list.sequence {
            let names = items.compactMap(\.string).filter { !$0.isEmpty }
            guard !items.isEmpty, names.count == items.count else {
                throw error("\(field).features", list, "expected auto or a list of feature names (e.g. [sepal_length, petal_width])")
            }
            features = .named(names)
        } else if let value = fields["features"] {
            guard value.string == "auto" else {
                throw error("\(field).features", value, "expected auto or a list of feature names, found '\(value.string ?? "")'")
            }
        }
        let window = try int(fields, "windowSeconds", field: "\(field).windowSeconds", default: 300)
        guard window >= 1 else { throw error("\(field).windowSeconds", fields["windowSeconds"], "must be at least 1 (seconds)") }
        return DriftSettings(features: features, windowSeconds: window)
    }
}
