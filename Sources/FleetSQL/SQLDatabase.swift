import Foundation

/// The hub's database, embedded (a SQLite file) or shared by several hub instances
/// (PostgreSQL). Stores read and write through `read` and `write` with the same SQL
/// on both; what differs between the engines stays in this target.
public final class SQLDatabase: Sendable {
    public let location: SQLLocation
    private let engine: any SQLEngine

    /// Opens the database and applies the migrations it has not seen yet, in order.
    /// With `requireEmpty`, a database that has applied any is refused (`notEmpty`).
    public static func open(_ location: SQLLocation, migrations: [SQLMigration], requireEmpty: Bool = false) throws -> SQLDatabase {
        let engine: any SQLEngine =
            switch location {
            case .sqlite(let path): try SQLiteEngine(path: path)
            case .postgres(let url): try PostgresEngine(url: url)
            }
        let database = SQLDatabase(location: location, engine: engine)
        if requireEmpty, let applied = try? database.appliedMigrations(), !applied.isEmpty {
            throw SQLError.notEmpty(location.description)
        }
        try database.migrate(migrations)
        return database
    }

    private init(location: SQLLocation, engine: any SQLEngine) {
        self.location = location
        self.engine = engine
    }

    public var dialect: SQLDialect { engine.dialect }

    /// Runs `body` on a consistent snapshot; other readers and the writer go on meanwhile.
    public func read<T>(_ body: (SQLTransaction) throws -> T) throws -> T {
        try engine.read(body)
    }

    /// Runs `body` in a transaction that commits when it returns and rolls back when it
    /// throws. Write transactions run one at a time across every process and hub
    /// instance on this database (SQLite's write lock, a PostgreSQL advisory lock), so
    /// what one reads in it stays true until it commits: keep them short.
    public func write<T>(_ body: (SQLTransaction) throws -> T) throws -> T {
        try engine.write(body)
    }

    /// `write` for async callers: the transaction runs on a thread of its own, so a
    /// waiting write lock or a slow disk never holds one of Swift's few task threads.
    public func write<T: Sendable>(_ body: @escaping @Sendable (SQLTransaction) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Self.blockingWork.async {
                continuation.resume(with: Result { try self.write(body) })
            }
        }
    }

    private static let blockingWork = DispatchQueue(label: "fleethub.database", attributes: .concurrent)

    /// Waits until no other process or hub instance on this database holds the turn
    /// `name`, and holds it until `end()` or until this process dies.
    public func takeTurn(_ name: String) async throws -> SQLTurn {
        try await engine.takeTurn(name)
    }

    /// The names of the migrations this database has applied.
    public func appliedMigrations() throws -> Set<String> {
        try read { transaction in
            Set(try transaction.values(as: String.self, "SELECT identifier FROM \(engine.migrationTable)"))
        }
    }

    private func migrate(_ migrations: [SQLMigration]) throws {
        // Most opens find nothing to do, and must not take the write lock for it.
        if let applied = try? appliedMigrations(), migrations.allSatisfy({ applied.contains($0.name) }) { return }
        try write { transaction in
            _ = try transaction.execute("CREATE TABLE IF NOT EXISTS \(engine.migrationTable) (identifier TEXT NOT NULL PRIMARY KEY)")
        }
        for migration in migrations {
            try write { transaction in
                // Read inside the write transaction: two instances starting at once apply each migration once.
                let applied = try transaction.value(
                    as: Int.self, "SELECT 1 FROM \(engine.migrationTable) WHERE identifier = ?", [migration.name])
                guard applied == nil else { return }
                do {
                    for statement in migration.statements(for: engine.dialect) {
                        try transaction.execute(statement)
                    }
                } catch {
                    throw SQLError.migrationFailed(migration.name, reason: "\(error)")
                }
                try transaction.execute("INSERT INTO \(engine.migrationTable) (identifier) VALUES (?)", [migration.name])
            }
        }
    }
}

/// Where the hub's database is.
public enum SQLLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresURL)

    /// `postgres://…` or `postgresql://…` for PostgreSQL; any other URL scheme is refused.
    public init(parsing text: String) throws {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(try PostgresURL(parsing: text))
        } else if text.contains("://") {
            throw SQLError.unsupportedLocation(text)
        } else {
            self = .sqlite(path: text)
        }
    }

    /// Where it is, without a password.
    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let url): url.description
        }
    }
}

/// One named schema change, in each database's DDL. The name is recorded once applied;
/// a migration is never edited once released, a new one is appended.
public struct SQLMigration: Sendable {
    public let name: String
    let sqlite: [String]
    let postgres: [String]

    public init(_ name: String, sqlite: [String], postgres: [String]) {
        self.name = name
        self.sqlite = sqlite
        self.postgres = postgres
    }

    /// The same statements on both databases.
    public init(_ name: String, both statements: [String]) {
        self.init(name, sqlite: statements, postgres: statements)
    }

    func statements(for dialect: SQLDialect) -> [String] {
        dialect == .sqlite ? sqlite : postgres
    }
}

/// A turn held across processes (`SQLDatabase.takeTurn`).
public protocol SQLTurn: Sendable {
    func end()
}

/// What each database engine provides.
protocol SQLEngine: Sendable {
    var dialect: SQLDialect { get }
    var migrationTable: String { get }
    func read<T>(_ body: (SQLTransaction) throws -> T) throws -> T
    func write<T>(_ body: (SQLTransaction) throws -> T) throws -> T
    func takeTurn(_ name: String) async throws -> SQLTurn
}
