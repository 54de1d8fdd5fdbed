import Foundation
import Synchronization

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
        /// Killed because the timeout of `run(…timeout:)` passed.
        public var timedOut = false
    }

    /// Runs `command` to completion, blocking the calling thread, and captures what it
    /// prints: both streams together, or apart with `separateErrors`. No other descriptor
    /// of this process reaches it.
    public static func run(
        _ command: [String], environment: [String: String], directory: String? = nil, separateErrors: Bool = false
    ) throws(SpawnError) -> Completed {
        let (pid, descriptors) = try startCapturing(
            command, environment: environment, directory: directory, separateErrors: separateErrors)
        let captured = CapturePipe.readToEnd(descriptors)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return Completed(
            status: ExitStatus(waitStatus: status), output: String(decoding: captured[0], as: UTF8.self),
            errors: captured.count > 1 ? String(decoding: captured[1], as: UTF8.self) : "")
    }

    /// The same on a thread of its own, so that no Swift concurrency thread waits for it.
    /// Cancelling the task, or `timeout` passing, kills the program's whole process group
    /// (what it started too) with SIGKILL; `Completed.timedOut` tells the timeout apart.
    /// `started` gets the pid (the process group's id) once the program runs, so a caller
    /// can record it for a runtime that is killed meanwhile.
    public static func run(
        _ command: [String], environment: [String: String], directory: String? = nil, separateErrors: Bool = false,
        timeout: Duration? = nil, started: @Sendable (pid_t) -> Void = { _ in }
    ) async throws(SpawnError) -> Completed {
        let (pid, descriptors) = try startCapturing(
            command, environment: environment, directory: directory, separateErrors: separateErrors)
        started(pid)
        let group = RunningGroup(pid: pid)
        let timer = timeout.map { timeout in
            Task {
                try await Task.sleep(for: timeout)
                group.end(timedOut: true)
            }
        }
        defer { timer?.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                Thread {
                    let captured = CapturePipe.readToEnd(descriptors)
                    let status = group.waitForExit()
                    continuation.resume(
                        returning: Completed(
                            status: status, output: String(decoding: captured[0], as: UTF8.self),
                            errors: captured.count > 1 ? String(decoding: captured[1], as: UTF8.self) : "",
                            timedOut: group.timedOut))
                }.start()
            }
        } onCancel: {
            group.end(timedOut: false)
        }
    }

    /// Starts `command` writing into pipes of its own: both streams into one, or its
    /// errors into a second with `separateErrors`. Returns its pid and the read ends
    /// (output first) for `CapturePipe.readToEnd`.
    private static func startCapturing(
        _ command: [String], environment: [String: String], directory: String?, separateErrors: Bool
    ) throws(SpawnError) -> (pid: pid_t, descriptors: [Int32]) {
        let output = try CapturePipe.open(command)
        let errors: CapturePipe?
        do throws(SpawnError) {
            errors = separateErrors ? try CapturePipe.open(command) : nil
        } catch {
            output.closeBoth()
            throw error
        }
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
        return (pid, [output.read] + (errors.map { [$0.read] } ?? []))
    }
}

/// A started program's process group, which is killed at most while its leader is not
/// reaped yet: after that its pid (and group id) may belong to someone else.
private final class RunningGroup: Sendable {
    private let pid: pid_t
    private struct State {
        var reaped = false
        var timedOut = false
    }
    private let state = Mutex(State())

    init(pid: pid_t) { self.pid = pid }

    var timedOut: Bool { state.withLock { $0.timedOut } }

    func end(timedOut: Bool) {
        state.withLock { state in
            guard !state.reaped else { return }
            if timedOut { state.timedOut = true }
            kill(-pid, SIGKILL)
        }
    }

    /// Waits for the leader to exit without reaping it, marks the group as gone, then reaps.
    func waitForExit() -> ExitStatus {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        state.withLock { $0.reaped = true }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return ExitStatus(waitStatus: status)
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
