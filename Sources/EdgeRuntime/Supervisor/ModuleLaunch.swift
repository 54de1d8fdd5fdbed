import FleetCore
import Foundation

/// Everything the supervisor needs to run one module: which program, where, with
/// which environment, and what to do when it exits.
public struct ModuleLaunch: Sendable, Equatable {
    public var name: String
    public var digest: ContentDigest
    /// The unpacked bundle; the program runs with this as its working directory.
    public var folder: URL
    public var command: [String]
    public var environment: [String: String]
    public var restartPolicy: RestartPolicy

    public init(
        name: String, digest: ContentDigest, folder: URL, command: [String], environment: [String: String],
        restartPolicy: RestartPolicy
    ) {
        self.name = name
        self.digest = digest
        self.folder = folder
        self.command = command
        self.environment = environment
        self.restartPolicy = restartPolicy
    }

    /// How to run `spec` from its unpacked bundle, or why it cannot be run.
    public init(spec: ModuleSpec, manifest: ModuleManifest, folder: URL) throws {
        guard spec.kind == .process, manifest.kind == .process else {
            throw ModuleLaunchError.unsupportedKind(module: spec.name, kind: spec.kind)
        }
        guard let command = manifest.command, !command.isEmpty else {
            throw ModuleLaunchError.noCommand(module: spec.name)
        }
        var environment = ProcessInfo.processInfo.environment
        environment.merge(spec.env) { _, new in new }
        environment["MODULE_NAME"] = spec.name
        environment["MODULE_DIR"] = folder.path
        environment["MODULE_VERSION"] = String(manifest.version)
        self.init(
            name: spec.name, digest: spec.bundle.digest, folder: folder, command: command, environment: environment,
            restartPolicy: spec.restartPolicy)
    }
}

/// Why a module cannot be started from its bundle.
public enum ModuleLaunchError: Error, Equatable, CustomStringConvertible {
    case unsupportedKind(module: String, kind: ModuleKind)
    case noCommand(module: String)

    public var description: String {
        switch self {
        case .unsupportedKind(let module, let kind):
            "module '\(module)' is of kind '\(kind.rawValue)', which this runtime cannot run yet (only 'process' modules)"
        case .noCommand(let module):
            "module '\(module)' has no command in module.json; process modules need \"command\": [\"program\", …]"
        }
    }
}
