import FleetCore
import Foundation
import Logging
import Synchronization

/// The local API as the daemon runs it: serving in the background, started only once
/// it listens, so modules can be given its URL and a port already in use stops the
/// daemon at start with a clear error.
struct RunningLocalAPI {
    let task: Task<Void, Never>
    /// `http://HOST:PORT` of the TCP listener (loopback when bound to all addresses).
    let url: String

    static func start(
        settings: LocalAPISettings?, modules: LocalModules, telemetry: any LocalTelemetrySink, logger: Logger
    ) async throws -> RunningLocalAPI {
        let settings = settings ?? LocalAPISettings()
        let defaults = LocalAPIConfiguration()
        let configuration = LocalAPIConfiguration(
            host: settings.host ?? LocalAPISettings.defaultHost, port: settings.port ?? LocalAPISettings.defaultPort,
            unixSocketPath: settings.socketPath, maxBodyBytes: settings.maxBodyBytes ?? defaults.maxBodyBytes)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let failure = Mutex<String?>(nil)
        let server = LocalAPIServer(
            configuration: configuration, modules: modules, telemetry: telemetry, logger: logger,
            onListening: { port in continuation.yield(port) })
        let task = Task {
            do {
                try await server.run()
            } catch {
                failure.withLock { $0 = "\(error)" }
                logger.error("local API stopped", metadata: ["error": "\(error)"])
            }
            continuation.finish()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            throw DaemonError.localAPI(
                address: "\(configuration.host):\(configuration.port)",
                reason: failure.withLock { $0 } ?? "the server stopped before it listened")
        }
        let host = ["0.0.0.0", "::", ""].contains(configuration.host) ? "127.0.0.1" : configuration.host
        let url = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        logger.info("local API listening", metadata: ["url": "\(url)"])
        return RunningLocalAPI(task: task, url: url)
    }
}
