import FleetCore
import Foundation

/// What a module's Python environment is made of, as its `module.json` says: the hub's
/// pins when it made them, so pip installs exactly the artifacts the hub signed and
/// nothing else; else, for a bundle packaged before pinning, its bare requirement lines.
public struct EnvironmentRequirements: Equatable, Sendable {
    public var requirements: [String]
    public var pins: [RequirementPin]?
    public var indexOptions: [String]

    public init(requirements: [String], pins: [RequirementPin]? = nil, indexOptions: [String] = []) {
        self.requirements = requirements
        self.pins = pins
        self.indexOptions = indexOptions
    }

    public init(_ manifest: ModuleManifest) {
        self.init(requirements: manifest.requirements, pins: manifest.pins, indexOptions: manifest.indexOptions ?? [])
    }

    /// Whether pip would install whatever the index serves under these names.
    public var isUnpinned: Bool { pins == nil && !lines.isEmpty }

    /// The environment's key: of the pin lines (a new artifact is a new environment), else of
    /// the requirement lines as before pinning, so older bundles keep their environments.
    public var key: String { PythonEnvironments.key(for: pins?.map(\.requirementLine) ?? requirements) }

    /// The requirement lines to install.
    var lines: [String] {
        pins?.map(\.requirementLine) ?? requirements.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The requirements file pip reads: the index options (unless the wheels are vendored), then the lines.
    func requirementsFile(vendored: Bool) -> String {
        ((vendored ? [] : indexOptions) + lines).joined(separator: "\n") + "\n"
    }

    /// `pip install` options: pinned installs take exactly the listed artifacts
    /// (`--require-hashes`) and no dependency pip would pick itself (`--no-deps`: the pins
    /// hold every one); vendored wheels are installed without an index.
    func installOptions(wheels: URL?) -> [String] {
        (pins == nil ? [] : ["--require-hashes", "--no-deps"]) + (wheels.map { ["--no-index", "--find-links", $0.path] } ?? [])
    }
}

extension ModuleManifest {
    /// The environment this module's bundle asks for.
    public var environment: EnvironmentRequirements { EnvironmentRequirements(self) }
}
