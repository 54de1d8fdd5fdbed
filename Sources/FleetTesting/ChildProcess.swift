import FleetCore
import Foundation

/// A program started for a test by `ProcessSpawner`: in a process group of its own,
/// with every signal unblocked (a child of Foundation's `Process` started from a
/// test's worker thread would ignore SIGTERM).
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments`; its output goes to `outputPath` (both
    /// streams), or nowhere. `descriptors` maps a child descriptor number to the
    /// parent descriptor it inherits.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        outputPath: String? = nil, descriptors: [Int32: Int32] = [:]
    ) throws {
        do {
            pid = try ProcessSpawner.spawn(
                [executable] + arguments, environment: environment ?? ProcessInfo.processInfo.environment,
                output: outputPath.map { .file($0) } ?? .discard, descriptors: descriptors)
        } catch {
            throw FixtureError.didNotStart(executable, log: "\(error)")
        }
    }

    /// True until the process exited (and was reaped).
    public var isRunning: Bool { poll() == nil }

    /// Sends `signal` to the process's whole group.
    public func signal(_ signal: Int32) {
        if isRunning { kill(-pid, signal) }
    }

    /// Waits for the process to exit and returns its wait status.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = poll() { return status }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw FixtureError.didNotStart("exit of pid \(pid)", log: "still running after \(timeout)")
    }

    /// Stops the process: SIGTERM, then SIGKILL after `grace`; waits for it.
    public func stop(grace: Duration = .seconds(5)) {
        guard isRunning else { return }
        kill(-pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            if poll() != nil { return }
            usleep(10_000)
        }
        kill(-pid, SIGKILL)
        while poll() == nil { usleep(10_000) }
    }

    private func poll() -> Int32? {
        lock.withLock {
            if let exitStatus { return exitStatus }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result < 0 && errno == ECHILD) {
                exitStatus = status
            }
            return exitStatus
        }
    }

    deinit {
        stop(grace: .seconds(2))
    }
}
