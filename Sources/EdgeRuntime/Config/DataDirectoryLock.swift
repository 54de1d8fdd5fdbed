import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The exclusive `flock` one `edge-runtime run` holds on `edge-runtime.lock` in its
/// data dir for as long as it runs, so that a second daemon on the same dir is
/// refused before it touches anything (two would end each other's modules, run
/// duplicate workers and kick each other off the broker). The file holds the
/// holder's pid, to name it; the lock, not the file, says whether a daemon runs, so a
/// daemon killed with SIGKILL leaves nothing that claims it still does.
public final class DataDirectoryLock: Sendable {
    /// The pid of this process, written into the file.
    public let pid: pid_t
    private let descriptor: Int32

    private init(descriptor: Int32, pid: pid_t) {
        self.descriptor = descriptor
        self.pid = pid
    }

    /// Takes the lock, creating the data dir (0700) and the file if needed. Throws
    /// `DataDirectoryLockError.held` at once when another process holds it.
    public static func acquire(_ dataDirectory: DataDirectory) throws(DataDirectoryLockError) -> DataDirectoryLock {
        let path = dataDirectory.lock.path
        do {
            try FileManager.default.createDirectory(
                at: dataDirectory.root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .unusable(path: path, reason: error.localizedDescription)
        }
        // Close-on-exec: a module that inherited the descriptor would keep the lock
        // after the daemon died.
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .unusable(path: path, reason: String(cString: strerror(errno))) }
        // `status` takes the lock shared for an instant to test it: a few quick
        // retries tell that from a daemon that holds it.
        var attempts = 0
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            attempts += 1
            guard reason == EWOULDBLOCK, attempts < 5 else {
                let holder = readPid(descriptor)
                close(descriptor)
                if reason == EWOULDBLOCK { throw .held(path: path, pid: holder) }
                throw .unusable(path: path, reason: String(cString: strerror(reason)))
            }
            usleep(20_000)
        }
        let pid = getpid()
        let text = "\(pid)\n"
        guard ftruncate(descriptor, 0) == 0, pwrite(descriptor, text, text.utf8.count, 0) == text.utf8.count else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw .unusable(path: path, reason: reason)
        }
        return DataDirectoryLock(descriptor: descriptor, pid: pid)
    }

    /// The pid of the `edge-runtime run` holding `dataDirectory`, or nil when none
    /// does (never started, stopped, or killed). A holder whose pid is not readable
    /// yet is reported as 0.
    public static func holder(of dataDirectory: DataDirectory) -> pid_t? {
        let descriptor = open(dataDirectory.lock.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_SH | LOCK_NB) != 0 else {
            flock(descriptor, LOCK_UN)
            return nil
        }
        return readPid(descriptor) ?? 0
    }

    /// Releases the lock; the daemon calls it last, after its modules stopped.
    public func release() {
        flock(descriptor, LOCK_UN)
    }

    deinit {
        close(descriptor)
    }

    private static func readPid(_ descriptor: Int32) -> pid_t? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = pread(descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return pid_t(text)
    }
}

/// Why the daemon cannot take its data dir.
public enum DataDirectoryLockError: Error, Equatable, CustomStringConvertible {
    /// Another process holds the lock: an `edge-runtime run` on the same data dir.
    case held(path: String, pid: pid_t?)
    case unusable(path: String, reason: String)

    public var description: String {
        switch self {
        case .held(let path, let pid):
            "another edge-runtime (pid \(pid.map { "\($0)" } ?? "unknown")) is running on this data dir (it holds \(path)); stop it first (systemctl stop edge-runtime, or kill \(pid.map { "\($0)" } ?? "<pid>")), or give this one its own dataDir in the device config"
        case .unusable(let path, let reason):
            "cannot lock \(path): \(reason); check that the data dir is writable by the runtime's user"
        }
    }
}
