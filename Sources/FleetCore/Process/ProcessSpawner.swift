import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Starts a program the way every child of the fleet's processes must be started:
/// as the leader of a new process group, so a stop reaches everything it started;
/// with an empty signal mask and default signal actions, because Foundation's
/// `Process` hands the spawning thread's blocked signals on and a child that
/// blocks SIGTERM cannot be stopped gracefully; and with `posix_spawn`, never a
/// `fork` of a multi-threaded process.
public enum ProcessSpawner {
    /// Where the child's standard output and standard error go (stdin is /dev/null).
    public enum Output: Sendable {
        case discard
        /// Both streams appended to this file, created if needed.
        case file(String)
        /// Both streams onto this open descriptor of the parent.
        case descriptor(Int32)
        /// Standard output joins the parent's standard error, which the child keeps.
        case parentStandardError
    }

    /// Starts `command` (a program and its arguments) with exactly `environment`.
    /// A program with a `/` is a path, relative to `directory` when not absolute;
    /// a bare name is looked up on the PATH. `descriptors` maps a child descriptor
    /// number to the parent descriptor it receives; with `closeOthers`, no other
    /// descriptor above 2 reaches the child. Returns the pid, which is also the
    /// process group id.
    public static func spawn(
        _ command: [String], environment: [String: String], directory: String? = nil, output: Output = .discard,
        descriptors: [Int32: Int32] = [:], closeOthers: Bool = false
    ) throws(SpawnError) -> pid_t {
        guard let program = command.first, !program.isEmpty else { throw .emptyCommand }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        switch output {
        case .discard:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .descriptor(let fd):
            posix_spawn_file_actions_adddup2(&actions, fd, 1)
            posix_spawn_file_actions_adddup2(&actions, fd, 2)
        case .parentStandardError:
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        }
        for (child, parent) in descriptors.sorted(by: { $0.key < $1.key }) {
            posix_spawn_file_actions_adddup2(&actions, parent, child)
        }
        if closeOthers {
            let lowest = (descriptors.keys.max() ?? 2) + 1
            _ = GNUSpawnExtensions.addClosefrom(&actions, lowest)
        }
        if let directory, GNUSpawnExtensions.addChdir(&actions, directory) != 0 {
            throw .cannotChangeDirectory(directory)
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
        let rc: Int32
        if program.contains("/") {
            let path = program.hasPrefix("/") || directory == nil ? program : "\(directory!)/\(program)"
            rc = posix_spawn(&pid, path, &actions, &attributes, arguments, variables)
        } else {
            rc = posix_spawnp(&pid, program, &actions, &attributes, arguments, variables)
        }
        guard rc == 0 else { throw .failed(command: command, reason: String(cString: strerror(rc))) }
        return pid
    }
}

/// Why a program could not be started.
public enum SpawnError: Error, Equatable, CustomStringConvertible {
    case emptyCommand
    case cannotChangeDirectory(String)
    case failed(command: [String], reason: String)

    public var description: String {
        switch self {
        case .emptyCommand: "the command is empty"
        case .cannotChangeDirectory(let directory): "cannot change to \(directory)"
        case .failed(let command, let reason): "cannot start \(command.joined(separator: " ")): \(reason)"
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
