import FleetCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The hub's Python (`$FLEETHUB_PYTHON`, else `python3` on the PATH), run to completion
/// for packaging: downloading wheels, compiling scoring scripts, resolving requirements.
enum PythonTool {
    struct Outcome {
        var status: Int32
        var output: String
    }

    static var python: String { ProcessInfo.processInfo.environment["FLEETHUB_PYTHON"] ?? "python3" }

    /// Runs `python arguments…` and returns its exit status and combined output; throws
    /// `RegistryError.pythonUnavailable` when it cannot be started.
    static func run(_ arguments: [String]) throws -> Outcome {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else {
            throw RegistryError.pythonUnavailable(python, reason: String(cString: strerror(errno)))
        }
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        let pid: pid_t
        do {
            pid = try ProcessSpawner.spawn(
                [python] + arguments, environment: ProcessInfo.processInfo.environment, output: .descriptor(descriptors[1]))
        } catch {
            close(descriptors[0])
            close(descriptors[1])
            throw RegistryError.pythonUnavailable(python, reason: error.description)
        }
        close(descriptors[1])
        let output = FileHandle(fileDescriptor: descriptors[0], closeOnDealloc: true).readDataToEndOfFile()
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        if code == 127 {
            throw RegistryError.pythonUnavailable(python, reason: "not found on the PATH")
        }
        return Outcome(status: code, output: String(decoding: output, as: UTF8.self))
    }
}
