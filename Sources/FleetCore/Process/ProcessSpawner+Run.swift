import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension ProcessSpawner {
    /// A program run to completion: how it ended and what it printed.
    public struct Completed: Sendable {
        public var status: ExitStatus
        /// Its standard output, with its standard error in it unless they were kept apart.
        public var output: String
        /// Its standard error, when kept apart from the output.
        public var errors: String
    }

    /// Runs `command` to completion, blocking the calling thread, and captures what it
    /// prints: both streams together, or apart with `separateErrors`. No other descriptor
    /// of this process reaches it.
    public static func run(
        _ command: [String], environment: [String: String], directory: String? = nil, separateErrors: Bool = false
    ) throws(SpawnError) -> Completed {
        let output = try CapturePipe.open(command)
        let errors = separateErrors ? try CapturePipe.open(command) : nil
        let pid: pid_t
        do {
            pid = try spawn(
                command, environment: environment, directory: directory, output: .descriptor(output.write),
                descriptors: errors.map { [2: $0.write] } ?? [:], closeOthers: true)
        } catch {
            output.closeBoth()
            errors?.closeBoth()
            throw error
        }
        close(output.write)
        if let errors { close(errors.write) }
        let captured = CapturePipe.readToEnd([output.read] + (errors.map { [$0.read] } ?? []))
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return Completed(
            status: ExitStatus(waitStatus: status), output: String(decoding: captured[0], as: UTF8.self),
            errors: captured.count > 1 ? String(decoding: captured[1], as: UTF8.self) : "")
    }

    /// The same on a thread of its own, so that no Swift concurrency thread waits for it.
    public static func run(
        _ command: [String], environment: [String: String], directory: String? = nil, separateErrors: Bool = false
    ) async throws(SpawnError) -> Completed {
        let result: Result<Completed, SpawnError> = await withCheckedContinuation { continuation in
            Thread {
                do throws(SpawnError) {
                    continuation.resume(
                        returning: .success(
                            try run(command, environment: environment, directory: directory, separateErrors: separateErrors)))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }.start()
        }
        return try result.get()
    }
}

/// The two ends of a pipe, close-on-exec (the spawner hands the child the write end).
private struct CapturePipe {
    var read: Int32
    var write: Int32

    static func open(_ command: [String]) throws(SpawnError) -> CapturePipe {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else { throw .failed(command: command, reason: String(cString: strerror(errno))) }
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        return CapturePipe(read: descriptors[0], write: descriptors[1])
    }

    func closeBoth() {
        close(read)
        close(write)
    }

    /// Reads every descriptor until each is at its end, all at once (a child that fills
    /// one pipe while the parent waits on the other would never finish), then closes them.
    static func readToEnd(_ descriptors: [Int32]) -> [Data] {
        var data = descriptors.map { _ in Data() }
        var open = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while open.contains(where: { $0.fd >= 0 }) {
            guard poll(&open, nfds_t(open.count), -1) >= 0 || errno == EINTR else { break }
            for index in open.indices where open[index].fd >= 0 && open[index].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(open[index].fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    data[index].append(contentsOf: buffer[0..<count])
                } else if count == 0 || errno != EINTR {
                    close(open[index].fd)
                    open[index].fd = -1
                }
            }
        }
        return data
    }
}
