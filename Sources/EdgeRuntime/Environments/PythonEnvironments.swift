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
    /// Longest `python -m venv` and `pip install` may take before their process group is killed.
    public var venvTimeout: Duration
    public var pipTimeout: Duration

    /// The file whose presence marks an environment as complete.
    static let readyMarker = ".ready"

    public init(
        dataDirectory: DataDirectory, python: String = "python3",
        venvTimeout: Duration = .seconds(EnvironmentSettings.defaultVenvTimeoutSeconds),
        pipTimeout: Duration = .seconds(EnvironmentSettings.defaultPipTimeoutSeconds)
    ) {
        folder = dataDirectory.environments
        self.python = python
        self.venvTimeout = venvTimeout
        self.pipTimeout = pipTimeout
    }

    /// The commands `prepare` runs, as progress names them.
    public enum Command: String, Sendable {
        case venv = "creating the virtual environment"
        case pipInstall = "pip install"
    }

    /// What `prepare` tells its caller: each command as it begins (for progress), and
    /// each process group as it starts and ends (so a killed runtime's successor ends it).
    public struct Observer: Sendable {
        public var commandStarted: @Sendable (Command) -> Void
        public var processStarted: @Sendable (pid_t) -> Void
        public var processEnded: @Sendable () -> Void

        public init(
            commandStarted: @escaping @Sendable (Command) -> Void = { _ in },
            processStarted: @escaping @Sendable (pid_t) -> Void = { _ in },
            processEnded: @escaping @Sendable () -> Void = {}
        ) {
            self.commandStarted = commandStarted
            self.processStarted = processStarted
            self.processEnded = processEnded
        }
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
    /// Cancelling the task kills the command running (and its process group).
    @discardableResult
    public func prepare(requirements: EnvironmentRequirements, wheels: URL?, observer: Observer = Observer()) async throws -> URL {
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
        try await run(.venv, create + [environment.path], in: folder, environment: processEnvironment, observer: observer)
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
            try await run(
                .pipInstall, install + requirements.installOptions(wheels: wheels) + ["-r", requirementsFile.path], in: environment,
                environment: processEnvironment, observer: observer)
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

    private func run(
        _ kind: Command, _ command: [String], in directory: URL, environment: [String: String], observer: Observer
    ) async throws {
        try Task.checkCancellation()
        observer.commandStarted(kind)
        let timeout = kind == .venv ? venvTimeout : pipTimeout
        let outcome: ProcessSpawner.Completed
        do {
            outcome = try await ProcessSpawner.run(
                command, environment: environment, directory: directory.path, timeout: timeout,
                started: observer.processStarted)
        } catch {
            throw EnvironmentError.commandFailed(command: command.joined(separator: " "), status: 127, output: "\(error)")
        }
        // Its group is ended: killed by the timeout or a cancellation, or exited.
        observer.processEnded()
        try Task.checkCancellation()
        if outcome.timedOut {
            throw EnvironmentError.timedOut(
                command: command.joined(separator: " "), step: kind.rawValue, seconds: Int(timeout.components.seconds))
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
    case timedOut(command: String, step: String, seconds: Int)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .commandFailed(let command, let status, let output):
            // pip's error first: the health report keeps only the first 300 characters.
            "\(command.contains(" -m pip install") ? "pip install" : "creating the virtual environment") failed with exit code \(status): "
                + "\(PipOutput.errorLines(of: output)); install python3-venv, vendor the wheels in the bundle's wheels/ folder, "
                + "or check the requirements (command: \(command))"
        case .timedOut(let command, let step, let seconds):
            "\(step) timed out after \(seconds) s; check that the package index answers, vendor the wheels in the bundle's "
                + "wheels/ folder, or raise environments.\(step == PythonEnvironments.Command.venv.rawValue ? "venvTimeoutSeconds" : "pipTimeoutSeconds") "
                + "in the device config (command: \(command))"
        case .writeFailed(let path, let reason): "cannot write \(path): \(reason) (is the disk full?)"
        }
    }
}
