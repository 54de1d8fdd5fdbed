import FleetCore
import Foundation
import GRDB

/// The runtime's local SQLite database: the accepted desired state, what is applied,
/// and each module's process. It is what lets the runtime start the last known good
/// modules after a reboot or crash without the broker, and find leftover processes.
public final class StateStore: Sendable {
    /// One connection: the daemon's writes and reads are few and small, and `edge-runtime
    /// status` reads from its own process while the daemon writes (WAL).
    private let database: DatabaseQueue

    /// Opens (and creates or migrates) the database at `url`.
    public init(url: URL) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.journalMode = .wal
        // Another process (`edge-runtime status` while the daemon starts) may be creating
        // or migrating the same new file at this moment; a later attempt sees its work.
        var attempt = 1
        while true {
            do {
                let queue = try DatabaseQueue(path: url.path, configuration: configuration)
                try Self.migrator.migrate(queue)
                database = queue
                return
            } catch where attempt < 5 {
                attempt += 1
                usleep(50_000)
            } catch {
                throw StateStoreError.unusable(path: url.path, reason: "\(error)")
            }
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE desired (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    revision INTEGER NOT NULL,
                    state BLOB,
                    status TEXT NOT NULL,
                    error TEXT,
                    appliedRevision INTEGER NOT NULL,
                    lastRefusal TEXT);
                INSERT INTO desired (id, revision, status, appliedRevision) VALUES (1, 0, 'applied', 0);
                CREATE TABLE appliedModule (name TEXT PRIMARY KEY, record BLOB NOT NULL);
                CREATE TABLE moduleProcess (name TEXT PRIMARY KEY, record BLOB NOT NULL);
                """)
        }
        migrator.registerMigration("v2: session") { db in
            try db.execute(sql: "CREATE TABLE session (id INTEGER PRIMARY KEY CHECK (id = 1), record BLOB NOT NULL)")
        }
        migrator.registerMigration("v3: progress, retry and setup processes") { db in
            try db.execute(sql: """
                ALTER TABLE desired ADD COLUMN progress BLOB;
                ALTER TABLE desired ADD COLUMN retry BLOB;
                CREATE TABLE setupProcess (pid INTEGER PRIMARY KEY, record BLOB NOT NULL);
                """)
        }
        return migrator
    }

    // MARK: Desired state

    /// The desired state accepted last, if any.
    public func acceptedDesiredState() throws -> DesiredState? {
        try database.read { db in
            guard let data = try Data.fetchOne(db, sql: "SELECT state FROM desired WHERE id = 1") else { return nil }
            return try FleetJSON.decode(DesiredState.self, from: data)
        }
    }

    /// The highest revision accepted so far (0 before any).
    public func acceptedRevision() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT revision FROM desired WHERE id = 1") ?? 0 }
    }

    /// Stores `state` as accepted if its revision is higher than the accepted one, in
    /// one transaction; returns false (and changes nothing) otherwise.
    public func accept(_ state: DesiredState) throws -> Bool {
        let data = try FleetJSON.encode(state)
        return try database.write { db in
            try db.execute(
                sql: """
                    UPDATE desired SET revision = ?, state = ?, status = 'applying', error = NULL, progress = NULL,
                        retry = NULL
                    WHERE id = 1 AND revision < ?
                    """,
                arguments: [state.revision, data, state.revision])
            return db.changesCount == 1
        }
    }

    /// Records how applying `revision` went, and its retry; the application is over, so
    /// its progress is cleared. Ignored if a newer revision was accepted since.
    public func setDesiredStatus(_ status: DesiredStateStatus) throws {
        let retry = try status.retry.map { try FleetJSON.encode($0) }
        try database.write { db in
            let applied = status.status == .applied ? status.revision : nil
            try db.execute(
                sql: """
                    UPDATE desired SET status = ?, error = ?, appliedRevision = COALESCE(?, appliedRevision),
                        progress = NULL, retry = ?
                    WHERE id = 1 AND revision = ?
                    """,
                arguments: [status.status.rawValue, status.error, applied, retry, status.revision])
        }
    }

    /// Records the step the reconciler is on with `revision` (nil: none); ignored if a
    /// newer revision was accepted since.
    public func setProgress(_ progress: ApplyProgress?, revision: Int) throws {
        let data = try progress.map { try FleetJSON.encode($0) }
        try database.write { db in
            try db.execute(sql: "UPDATE desired SET progress = ? WHERE id = 1 AND revision = ?", arguments: [data, revision])
        }
    }

    /// Remembers why a desired-state message was refused.
    public func recordRefusal(_ reason: String) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE desired SET lastRefusal = ? WHERE id = 1", arguments: [reason])
        }
    }

    // MARK: Broker session

    /// The daemon's broker session as it last recorded it; nil before the first attempt.
    public func session() throws -> SessionStatus? {
        try database.read { db in
            try Data.fetchOne(db, sql: "SELECT record FROM session WHERE id = 1").map {
                try FleetJSON.decode(SessionStatus.self, from: $0)
            }
        }
    }

    /// Changes the recorded session in one transaction: `change` gets the current
    /// record, or `initial` before the first.
    public func updateSession(initial: SessionStatus, _ change: (inout SessionStatus) -> Void) throws {
        try database.write { db in
            var session = try Data.fetchOne(db, sql: "SELECT record FROM session WHERE id = 1").map {
                try FleetJSON.decode(SessionStatus.self, from: $0)
            } ?? initial
            change(&session)
            try db.execute(
                sql: "INSERT OR REPLACE INTO session (id, record) VALUES (1, ?)", arguments: [try FleetJSON.encode(session)])
        }
    }

    // MARK: Applied modules

    public func appliedModules() throws -> [AppliedModule] {
        try records(in: "appliedModule")
    }

    public func save(_ module: AppliedModule) throws {
        try save(module, named: module.name, in: "appliedModule")
    }

    public func removeAppliedModule(named name: String) throws {
        try removeRecord(named: name, from: "appliedModule")
    }

    // MARK: Module processes

    public func moduleStatuses() throws -> [ModuleStatus] {
        try records(in: "moduleProcess")
    }

    public func save(_ status: ModuleStatus) throws {
        try save(status, named: status.name, in: "moduleProcess")
    }

    public func removeModuleStatus(named name: String) throws {
        try removeRecord(named: name, from: "moduleProcess")
    }

    // MARK: Setup processes

    /// The venv and pip processes running for the reconciler, so a runtime killed
    /// meanwhile ends them at its next start.
    public func setupProcesses() throws -> [TrackedProcess] {
        try database.read { db in
            try Data.fetchAll(db, sql: "SELECT record FROM setupProcess ORDER BY pid")
                .map { try FleetJSON.decode(TrackedProcess.self, from: $0) }
        }
    }

    public func saveSetupProcess(_ process: TrackedProcess) throws {
        let data = try FleetJSON.encode(process)
        try database.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO setupProcess (pid, record) VALUES (?, ?)", arguments: [process.processGroup, data])
        }
    }

    public func removeSetupProcesses() throws {
        try database.write { db in try db.execute(sql: "DELETE FROM setupProcess") }
    }

    // MARK: Tables of JSON records keyed by module name

    private func records<Record: Decodable>(in table: String) throws -> [Record] {
        try database.read { db in
            try Data.fetchAll(db, sql: "SELECT record FROM \(table) ORDER BY name")
                .map { try FleetJSON.decode(Record.self, from: $0) }
        }
    }

    private func save<Record: Encodable>(_ record: Record, named name: String, in table: String) throws {
        let data = try FleetJSON.encode(record)
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO \(table) (name, record) VALUES (?, ?)", arguments: [name, data])
        }
    }

    private func removeRecord(named name: String, from table: String) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM \(table) WHERE name = ?", arguments: [name])
        }
    }

    // MARK: Changes

    /// A signal after every committed write to the desired state, the applied modules
    /// or the module processes (a module started, crashed, backed off; a revision was
    /// accepted, applied, failed, rolled back or refused). Bursts coalesce into one
    /// pending signal. The health reporter follows it; writes made through another
    /// `StateStore` on the same file are not seen.
    public func changes() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let observation = DatabaseRegionObservation(tracking: Table("desired"), Table("appliedModule"), Table("moduleProcess"))
            .start(in: database) { _ in continuation.finish() } onChange: { _ in continuation.yield() }
        continuation.onTermination = { _ in observation.cancel() }
        return stream
    }

    // MARK: Status

    /// Everything `edge-runtime status` and the health reporter show.
    public func status() throws -> RuntimeStatus {
        let modules = try moduleStatuses()
        return try database.read { db in
            let row = try Row.fetchOne(
                db,
                sql: "SELECT revision, status, error, appliedRevision, lastRefusal, progress, retry FROM desired WHERE id = 1")
            let revision: Int = row?["revision"] ?? 0
            let statusText: String = row?["status"] ?? "applied"
            let progress: Data? = row?["progress"]
            let retry: Data? = row?["retry"]
            return RuntimeStatus(
                acceptedRevision: revision, appliedRevision: row?["appliedRevision"] ?? 0,
                desired: DesiredStateStatus(
                    revision: revision, status: DesiredStateStatus.Status(rawValue: statusText) ?? .failed,
                    error: row?["error"], progress: try progress.map { try FleetJSON.decode(ApplyProgress.self, from: $0) },
                    retry: try retry.map { try FleetJSON.decode(ApplyRetry.self, from: $0) }),
                lastRefusal: row?["lastRefusal"], modules: modules)
        }
    }
}

/// Why the state database cannot be used.
public enum StateStoreError: Error, CustomStringConvertible {
    case unusable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unusable(let path, let reason):
            "cannot open the state database \(path): \(reason); check that the data dir is writable by the runtime's user"
        }
    }
}
