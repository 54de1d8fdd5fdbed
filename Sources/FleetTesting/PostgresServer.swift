import Foundation
import Synchronization

/// A real PostgreSQL cluster (Debian's `postgresql`) in a temporary folder on a free
/// loopback port, for the hub's tests on PostgreSQL. The hub connects as `fleethub`, an
/// ordinary role that owns its databases and is not a superuser; `psql` runs the
/// checks as the cluster's superuser over the cluster's own Unix socket.
///
/// PostgreSQL refuses to run as root: as root, the server and `initdb` run as the
/// `postgres` user (`setpriv`), which owns the data folder.
public final class PostgresServer: @unchecked Sendable {
    public let port: Int
    public let directory: TemporaryDirectory
    public let user = "fleethub"
    public let password = "hub-\(UUID().uuidString.prefix(8))"
    private let binaries: String
    private let lock = NSLock()
    private var process: ChildProcess?
    private var databases = 0

    /// The server every test in this process shares, started at first use and stopped
    /// when the process exits. Each test takes a database of its own (`createDatabase`).
    public static func shared() throws -> PostgresServer {
        try sharedServer.withLock { server in
            if let server { return server }
            let started = try start()
            server = started
            atexit { PostgresServer.stopShared() }
            return started
        }
    }

    private static let sharedServer = Mutex<PostgresServer?>(nil)

    private static func stopShared() {
        sharedServer.withLock { $0?.stop() }
    }

    /// Whether tests that need PostgreSQL should run: always in CI (so a missing install
    /// fails them), elsewhere only when it is installed.
    public static var shouldRun: Bool { Fixtures.isCI || binariesFolder() != nil }

    /// Starts a new cluster and waits until it accepts connections.
    public static func start() throws -> PostgresServer {
        guard let binaries = binariesFolder() else {
            throw FixtureError.missingProgram("PostgreSQL (initdb, postgres)", install: "scripts/setup (apt-get install postgresql)")
        }
        let directory = try TemporaryDirectory(prefix: "postgres")
        let server = PostgresServer(port: try Fixtures.freePort(), directory: directory, binaries: binaries)
        try server.launch()
        return server
    }

    private init(port: Int, directory: TemporaryDirectory, binaries: String) {
        self.port = port
        self.directory = directory
        self.binaries = binaries
    }

    /// A new, empty database owned by `fleethub`, as a URL the hub takes.
    public func createDatabase() throws -> String {
        let name = lock.withLock {
            databases += 1
            return "hub\(databases)"
        }
        try psql("CREATE DATABASE \(name) OWNER \(user)")
        return url(database: name)
    }

    public func url(database: String) -> String {
        "postgres://\(user):\(password)@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// Runs `sql` with psql (PostgreSQL's own client) as the superuser and returns its
    /// unaligned, tuples-only output.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try Fixtures.run(
            "\(binaries)/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", socketFolder, "-p", "\(port)", "-U", "postgres", "-d", database, "-c", sql])
    }

    /// A fast shutdown (SIGINT: sessions are ended, not waited for).
    public func stop() {
        guard let process = lock.withLock({ process }) else { return }
        process.signal(SIGINT)
        process.stop()
    }

    public var log: String {
        (try? String(contentsOfFile: directory.file("postgres.log"), encoding: .utf8))?.suffix(4000).description ?? ""
    }

    private var socketFolder: String { directory.file("socket") }
    private var dataFolder: String { directory.file("data") }

    private func launch() throws {
        let asRoot = geteuid() == 0
        try FileManager.default.createDirectory(atPath: dataFolder, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: socketFolder, withIntermediateDirectories: true)
        if asRoot {
            guard let owner = getpwnam("postgres") else {
                throw FixtureError.missingProgram("the postgres user", install: "scripts/setup (apt-get install postgresql)")
            }
            chmod(directory.path, 0o755)
            for folder in [dataFolder, socketFolder] { chown(folder, owner.pointee.pw_uid, owner.pointee.pw_gid) }
            _ = FileManager.default.createFile(atPath: directory.file("postgres.log"), contents: nil)
            chown(directory.file("postgres.log"), owner.pointee.pw_uid, owner.pointee.pw_gid)
        }
        func command(_ program: String, _ arguments: [String]) -> (String, [String]) {
            asRoot
                ? ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", "\(binaries)/\(program)"] + arguments)
                : ("\(binaries)/\(program)", arguments)
        }
        let initdb = command("initdb", ["-D", dataFolder, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-N", "-E", "UTF8", "--locale=C"])
        _ = try Fixtures.run(initdb.0, initdb.1)
        let server = command(
            "postgres",
            ["-D", dataFolder, "-p", "\(port)", "-k", socketFolder, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"])
        let process = try ChildProcess(server.0, server.1, outputPath: directory.file("postgres.log"))
        lock.withLock { self.process = process }
        var lastError = ""
        for _ in 0..<150 {
            guard process.isRunning else { break }
            do {
                try psql("SELECT 1")
                try psql("CREATE ROLE \(user) LOGIN PASSWORD '\(password)'")
                return
            } catch {
                lastError = "\(error)"
            }
            usleep(100_000)
        }
        stop()
        throw FixtureError.didNotStart("PostgreSQL on port \(port) (\(lastError))", log: log)
    }

    /// Debian keeps each major version's programs in /usr/lib/postgresql/N/bin; the newest wins.
    private static func binariesFolder() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        for version in versions.reversed() where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        return nil
    }
}

/// Which database the hub tests run on: SQLite, unless `FLEET_TEST_DATABASE=postgres`
/// (`scripts/test` runs the hub suites once on each).
public enum HubTestDatabase {
    public static var isPostgres: Bool { ProcessInfo.processInfo.environment["FLEET_TEST_DATABASE"] == "postgres" }

    /// A fresh database for one hub workspace: nil for its own SQLite file, else a new
    /// database on the shared PostgreSQL server.
    public static func fresh() throws -> String? {
        isPostgres ? try PostgresServer.shared().createDatabase() : nil
    }

    /// `fleethub` arguments, with a fresh `--database` added to an `init`.
    public static func arguments(_ arguments: [String]) throws -> [String] {
        guard arguments.first == "init", let database = try fresh() else { return arguments }
        return arguments + ["--database", database]
    }
}
