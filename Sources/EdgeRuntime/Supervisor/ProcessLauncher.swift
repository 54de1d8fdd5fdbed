import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Starts a module's program as the leader of a new process group, so that stopping
/// the module (or cleaning up after a crash of the runtime) reaches every process the
/// module started, with `posix_spawn` (no fork of the runtime's threads).
enum ProcessLauncher {
    /// Starts `command` in `directory` with exactly `environment`, its stdin on
    /// /dev/null and its stdout and stderr on `output`. Returns the pid, which is
    /// also the process group id.
    static func spawn(command: [String], directory: URL, environment: [String: String], output: Int32) throws -> pid_t {
        guard let program = command.first, !program.isEmpty else { throw LaunchError.emptyCommand }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        // Nothing else of the runtime (database, sockets) leaks into the module.
        _ = GNUSpawnExtensions.addClosefrom(&actions, 3)
        guard GNUSpawnExtensions.addChdir(&actions, directory.path) == 0 else {
            throw LaunchError.spawnFailed(command: command, reason: "cannot change to \(directory.path)")
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let arguments = command.map { strdup($0) } + [nil]
        let variables = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in arguments { free(pointer) }
            for pointer in variables { free(pointer) }
        }
        var pid: pid_t = 0
        // A bare name is looked up in PATH; a path with '/' is taken as is (relative to `directory`).
        let rc: Int32
        if program.contains("/") {
            let path = program.hasPrefix("/") ? program : directory.appendingPathComponent(program).path
            rc = posix_spawn(&pid, path, &actions, &attributes, arguments, variables)
        } else {
            rc = posix_spawnp(&pid, program, &actions, &attributes, arguments, variables)
        }
        guard rc == 0 else {
            throw LaunchError.spawnFailed(command: command, reason: String(cString: strerror(rc)))
        }
        return pid
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

/// glibc's `posix_spawn_file_actions_addchdir_np` and `…_addclosefrom_np`, which its
/// headers only declare for GNU builds, looked up once at run time.
private enum GNUSpawnExtensions {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    nonisolated(unsafe) private static let library = dlopen(nil, RTLD_NOW)
    private static let chdir: AddChdir? = dlsym(library, "posix_spawn_file_actions_addchdir_np")
        .map { unsafeBitCast($0, to: AddChdir.self) }
    private static let closefrom: AddClosefrom? = dlsym(library, "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddClosefrom.self) }

    static func addChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: String) -> Int32 {
        guard let chdir else { return ENOSYS }
        return chdir(actions, path)
    }

    static func addClosefrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowest: Int32) -> Int32 {
        guard let closefrom else { return ENOSYS }
        return closefrom(actions, lowest)
    }
}
