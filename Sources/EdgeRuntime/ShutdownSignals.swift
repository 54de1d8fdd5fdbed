import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGTERM and SIGINT into the cancellation of a task, so a daemon stops the
/// way it stops for any other cancellation.
public enum ShutdownSignals {
    /// Runs `operation` and cancels it on the first SIGTERM or SIGINT.
    public static func cancelling(_ operation: @escaping @Sendable () async throws -> Void) async throws {
        // A process started from a thread that blocks signals (any Swift concurrency or
        // Dispatch thread) inherits the block; unblock them here so that at least this
        // thread can receive them.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        let task = Task { try await operation() }
        let sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { task.cancel() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        try await task.value
    }
}
