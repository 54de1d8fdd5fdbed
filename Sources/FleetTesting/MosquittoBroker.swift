import Foundation

/// A real Eclipse Mosquitto broker on a free loopback port, with a configuration of
/// its own in a temp folder, for integration tests. It is stopped when `stop()` is
/// called or, as a last resort, when the value goes away.
public final class MosquittoBroker: @unchecked Sendable {
    public let port: Int
    public let directory: TemporaryDirectory
    private let lock = NSLock()
    private var process: ChildProcess?

    /// `mqtt://127.0.0.1:PORT`.
    public var url: String { "mqtt://127.0.0.1:\(port)" }

    /// Starts a broker. With `users`, clients must log in with one of these
    /// name/password pairs; without, anonymous clients are allowed.
    public static func start(users: [String: String] = [:]) async throws -> MosquittoBroker {
        guard let mosquitto = Fixtures.which("mosquitto") else {
            throw FixtureError.missingProgram("mosquitto", install: "scripts/setup")
        }
        let directory = try TemporaryDirectory(prefix: "mosquitto")
        var access = "allow_anonymous true\n"
        if !users.isEmpty {
            let passwords = directory.file("passwords")
            try users.map { "\($0.key):\($0.value)" }.joined(separator: "\n")
                .write(toFile: passwords, atomically: true, encoding: .utf8)
            guard let passwd = Fixtures.which("mosquitto_passwd") else {
                throw FixtureError.missingProgram("mosquitto_passwd", install: "scripts/setup")
            }
            try Fixtures.run(passwd, ["-U", passwords])
            access = "allow_anonymous false\npassword_file \(passwords)\n"
        }
        // Another test may take the same free port between the check and the bind:
        // then mosquitto exits, and the next attempt picks another port.
        var failure: (any Error)?
        for _ in 0..<5 {
            let port = try Fixtures.freePort()
            let config = """
                listener \(port) 127.0.0.1
                persistence false
                user \(NSUserName())
                log_dest file \(directory.file("mosquitto.log"))
                log_type error
                log_type warning
                log_type notice
                max_keepalive 65535

                """ + access
            try config.write(toFile: directory.file("mosquitto.conf"), atomically: true, encoding: .utf8)
            let broker = MosquittoBroker(port: port, directory: directory, executable: mosquitto)
            do {
                try await broker.launch()
                return broker
            } catch {
                failure = error
            }
        }
        throw failure ?? FixtureError.noFreePort
    }

    private let executable: String

    private init(port: Int, directory: TemporaryDirectory, executable: String) {
        self.port = port
        self.directory = directory
        self.executable = executable
    }

    private func launch() async throws {
        let process = try ChildProcess(executable, ["-c", directory.file("mosquitto.conf")])
        lock.withLock { self.process = process }
        for _ in 0..<200 {
            if Fixtures.isListening(port: port) {
                // Listening, and still alive: the port is ours, not another test's.
                try await Task.sleep(for: .milliseconds(50))
                if process.isRunning { return }
                break
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        stop()
        throw FixtureError.didNotStart("mosquitto on port \(port)", log: log)
    }

    /// What the broker logged so far.
    public var log: String {
        (try? String(contentsOfFile: directory.file("mosquitto.log"), encoding: .utf8)) ?? ""
    }

    /// Stops the broker (SIGTERM) and waits for it to exit.
    public func stop() {
        let process = lock.withLock { () -> ChildProcess? in
            defer { self.process = nil }
            return self.process
        }
        process?.stop()
    }

    /// Kills the broker abruptly (SIGKILL), as a crash or power loss would.
    public func kill() {
        let process = lock.withLock { () -> ChildProcess? in
            defer { self.process = nil }
            return self.process
        }
        process?.signal(SIGKILL)
        process?.stop()
    }

    /// Stops the broker and starts it again on the same port; retained messages are
    /// lost, since the broker keeps no persistence.
    public func restart() async throws {
        stop()
        try await launch()
    }

    deinit {
        stop()
    }
}
