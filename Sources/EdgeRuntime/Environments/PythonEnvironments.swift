import FleetCore
import Foundation

/// The Python virtual environments of `python-scoring` modules: one per distinct set
/// of requirements, keyed by the sha256 of the sorted pin (or requirement) lines, created
/// once and shared by every bundle with the same requirements. Pinned requirements are
/// installed with `--require-hashes`, so only the artifacts the hub signed can run. A
/// bundle's vendored wheels (`wheels/`) are installed with `--no-index`, so an offline
/// device needs no index.
public struct PythonEnvironments: Sendable {
    /// `environments/` under the data dir.
    public let folder: URL
    /// The interpreter that creates the environments.
    public let python: String

    /// The file whose presence marks an environment as complete.
    static let readyMarker = ".ready"

    public init(dataDirectory: DataDirectory, python: String = "python3") {
        folder = dataDirectory.environments
        self.python = python
    }

    /// The key of a requirements set: order, blank lines and surrounding spaces do not matter.
    public static func key(for requirements: [String]) -> String {
        let lines = requirements.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.sorted()
        return ContentDigest(of: Data(lines.joined(separator: "\n").utf8)).hex
    }

    /// Where the environment for `requirements` lives (ready or not).
    public func environment(for requirements: EnvironmentRequirements) -> URL {
        folder.appendingPathComponent(requirements.key)
    }

    /// Whether the environment for `requirements` was completely created.
    public func isReady(for requirements: EnvironmentRequirements) -> Bool {
        FileManager.default.fileExists(atPath: environment(for: requirements).appendingPathComponent(Self.readyMarker).path)
    }

    /// Creates the environment for `requirements` unless it is ready, installing from
    /// `wheels` only when given. An environment left half-made by a crash is made anew.
    @discardableResult
    public func prepare(requirements: EnvironmentRequirements, wheels: URL?) async throws -> URL {
        let environment = environment(for: requirements)
        if isReady(for: requirements) { return environment }
        let manager = FileManager.default
        try? manager.removeItem(at: environment)
        do {
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw EnvironmentError.writeFailed(path: folder.path, reason: "\(error.localizedDescription)")
        }
        let processEnvironment = ProcessInfo.processInfo.environment
        var create = [python, "-m", "venv"]
        if requirements.lines.isEmpty { create.append("--without-pip") }
        try await run(create + [environment.path], in: folder, environment: processEnvironment)
        if !requirements.lines.isEmpty {
            let requirementsFile = environment.appendingPathComponent("requirements.txt")
            do {
                try Data(requirements.requirementsFile(vendored: wheels != nil).utf8).write(to: requirementsFile)
            } catch {
                throw EnvironmentError.writeFailed(path: requirementsFile.path, reason: "\(error.localizedDescription)")
            }
            var install = [
                environment.appendingPathComponent("bin/python").path, "-m", "pip", "install",
                "--disable-pip-version-check", "--no-input",
            ]
            try await run(install + requirements.installOptions(wheels: wheels) + ["-r", requirementsFile.path], in: environment, environment: processEnvironment)
        }
        guard manager.createFile(atPath: environment.appendingPathComponent(Self.readyMarker).path, contents: Data()) else {
            throw EnvironmentError.writeFailed(path: environment.path, reason: "cannot write the ready marker")
        }
        return environment
    }

    /// Deletes every environment whose key is not in `keys`.
    public func removeAll(except keys: Set<String>) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names where !keys.contains(name) {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
    }

    private func run(_ command: [String], in directory: URL, environment: [String: String]) async throws {
        let outcome: ProcessSpawner.Completed
        do {
            outcome = try await ProcessSpawner.run(command, environment: environment, directory: directory.path)
        } catch {
            throw EnvironmentError.commandFailed(command: command.joined(separator: " "), status: 127, output: "\(error)")
        }
        guard outcome.status.succeeded else {
            throw EnvironmentError.commandFailed(
                command: command.joined(separator: " "), status: outcome.status.code, output: outcome.output)
        }
    }
}

/// Why a Python environment could not be made.
public enum EnvironmentError: Error, Equatable, CustomStringConvertible {
    case commandFailed(command: String, status: Int32, output: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .commandFailed(let command, let status, let output):
            // pip's error first: the health report keeps only the first 300 characters.
            "\(command.contains(" -m pip install") ? "pip install" : "creating the virtual environment") failed with exit code \(status): "
                + "\(PipOutput.errorLines(of: output)); install python3-venv, vendor the wheels in the bundle's wheels/ folder, "
                + "or check the requirements (command: \(command))"
        case .writeFailed(let path, let reason): "cannot write \(path): \(reason) (is the disk full?)"
        }
    }
}
