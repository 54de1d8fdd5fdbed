import Foundation

/// A real Eclipse Mosquitto started on a configuration file written elsewhere (e.g. by
/// `fleethub broker-config`), for tests of the TLS listener, client certificates,
/// revocation and ACLs exactly as an operator would run them. Its output goes to a
/// log file in `directory`; it is stopped by `stop()` or when the value goes away.
public final class TLSBroker: @unchecked Sendable {
    public let port: Int
    public let configFile: String
    public let directory: TemporaryDirectory
    private let executable: String
    private let lock = NSLock()
    private var process: ChildProcess?

    /// Starts mosquitto with `configFile`, whose listener must be on 127.0.0.1:`port`.
    public static func start(configFile: String, port: Int) async throws -> TLSBroker {
        guard let mosquitto = Fixtures.which("mosquitto") else {
            throw FixtureError.missingProgram("mosquitto", install: "scripts/setup")
        }
        let broker = TLSBroker(
            port: port, configFile: configFile, directory: try TemporaryDirectory(prefix: "mosquitto-tls"),
            executable: mosquitto)
        try await broker.launch()
        return broker
    }

    private init(port: Int, configFile: String, directory: TemporaryDirectory, executable: String) {
        self.port = port
        self.configFile = configFile
        self.directory = directory
        self.executable = executable
    }

    /// What the broker printed so far.
    public var log: String {
        (try? String(contentsOfFile: directory.file("mosquitto.log"), encoding: .utf8)) ?? ""
    }

    /// Stops the broker and starts it again, reading its configuration (and the
    /// certificate revocation list) anew.
    public func restart() async throws {
        stop()
        try await launch()
    }

    /// Stops the broker (SIGTERM) and waits for it to exit.
    public func stop() {
        let process = lock.withLock { () -> ChildProcess? in
            defer { self.process = nil }
            return self.process
        }
        process?.stop()
    }

    private func launch() async throws {
        let process = try ChildProcess(
            executable, ["-c", configFile, "-v"], outputPath: directory.file("mosquitto.log"))
        lock.withLock { self.process = process }
        for _ in 0..<200 {
            if Fixtures.isListening(port: port) { return }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        stop()
        throw FixtureError.didNotStart("mosquitto (\(configFile)) on port \(port)", log: log)
    }

    deinit {
        stop()
    }
}
