import FleetCore
import Foundation

/// The hub's Python (`$FLEETHUB_PYTHON`, else `python3` on the PATH), run to completion
/// for packaging: downloading wheels, compiling scoring scripts, resolving requirements,
/// loading ONNX models.
enum PythonTool {
    static var python: String { ProcessInfo.processInfo.environment["FLEETHUB_PYTHON"] ?? "python3" }

    /// Runs `python arguments…` and returns how it ended and what it printed (both
    /// streams together unless `separateErrors`); throws `RegistryError.pythonUnavailable`
    /// when it cannot be started.
    static func run(_ arguments: [String], separateErrors: Bool = false) throws -> ProcessSpawner.Completed {
        let completed: ProcessSpawner.Completed
        do {
            completed = try ProcessSpawner.run(
                [python] + arguments, environment: ProcessInfo.processInfo.environment, separateErrors: separateErrors)
        } catch {
            throw RegistryError.pythonUnavailable(python, reason: error.description)
        }
        if completed.status.code == 127 {
            throw RegistryError.pythonUnavailable(python, reason: "not found on the PATH")
        }
        return completed
    }
}
