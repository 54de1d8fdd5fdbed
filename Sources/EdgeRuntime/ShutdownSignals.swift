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
