import FleetCore
import Foundation

/// Starts a module's program as the leader of a new process group, so that stopping
/// the module (or cleaning up after a crash of the runtime) reaches every process the
/// module started (see `ProcessSpawner`).
enum ProcessLauncher {
    /// Starts `command` in `directory` with exactly `environment`, its stdin on
    /// /dev/null and its stdout and stderr on `output`. Returns the pid, which is
    /// also the process group id.
    static func spawn(command: [String], directory: URL, environment: [String: String], output: Int32) throws -> pid_t {
        do {
            // Nothing else of the runtime (database, sockets) leaks into the module.
            return try ProcessSpawner.spawn(
                command, environment: environment, directory: directory.path, output: .descriptor(output),
                closeOthers: true)
        } catch {
            switch error {
            case .emptyCommand: throw LaunchError.emptyCommand
            case .cannotChangeDirectory: throw LaunchError.spawnFailed(command: command, reason: "\(error)")
            case .failed(_, let reason): throw LaunchError.spawnFailed(command: command, reason: reason)
            }
        }
    }
}

/// Why a module's program could not be started.
enum LaunchError: Error, Equatable, CustomStringConvertible {
    case emptyCommand
    case spawnFailed(command: [String], reason: String)

    var description: String {
        switch self {
        case .emptyCommand: "module.json has an empty command; set \"command\": [\"program\", \"args\"…]"
        case .spawnFailed(let command, let reason):
            "cannot start \(command.joined(separator: " ")): \(reason); check the command in module.json and that the file is executable"
        }
    }
}
