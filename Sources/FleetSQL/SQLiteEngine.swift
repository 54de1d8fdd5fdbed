import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#endif

/// The embedded database: one SQLite file in WAL mode through GRDB, many readers and
/// one writer at a time (other processes wait up to 10 s for the write lock).
final class SQLiteEngine: SQLEngine {
    let dialect = SQLDialect.sqlite
    /// The table GRDB's migrator kept, so hubs created before this layer keep their history.
    let migrationTable = "grdb_migrations"
    private let pool: DatabasePool
    private let path: String

    init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.foreignKeysEnabled = true
        self.path = path
        pool = try DatabasePool(path: path, configuration: configuration)
    }

    func read<T>(_ body: (SQLTransaction) throws -> T) throws -> T {
        try pool.read { db in try body(SQLTransaction(dialect: .sqlite, statements: SQLiteStatements(db: db))) }
    }

    func write<T>(_ body: (SQLTransaction) throws -> T) throws -> T {
        try pool.write { db in try body(SQLTransaction(dialect: .sqlite, statements: SQLiteStatements(db: db))) }
    }

    /// An exclusive `flock` on a file beside the database, which the kernel releases
    /// when its holder dies.
    func takeTurn(_ name: String) async throws -> SQLTurn {
        let lockPath = "\(path)-\(name).lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw SQLError.connectionFailed(lockPath, reason: String(cString: strerror(errno)))
        }
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            guard reason == EWOULDBLOCK || reason == EINTR else {
                close(descriptor)
                throw SQLError.connectionFailed(lockPath, reason: String(cString: strerror(reason)))
            }
            do {
                try await Task.sleep(for: .milliseconds(5))
            } catch {
                close(descriptor)
                throw error
            }
        }
        return FileTurn(descriptor: descriptor)
    }
}

private struct FileTurn: SQLTurn {
    let descriptor: Int32
    func end() { close(descriptor) }
}

private struct SQLiteStatements: SQLStatementRunner {
    let db: Database

    func run(_ sql: String, _ arguments: [SQLValue], generated: Bool) throws -> SQLResult {
        do {
            let statement = generated ? try db.makeStatement(sql: sql) : try db.cachedStatement(sql: sql)
            try statement.setArguments(StatementArguments(arguments.map(Self.databaseValue)))
            let columns = SQLColumns(statement.columnNames)
            var rows: [SQLRow] = []
            let cursor = try Row.fetchCursor(statement)
            while let row = try cursor.next() {
                rows.append(SQLRow(columns: columns, values: row.databaseValues.map(Self.value)))
            }
            return SQLResult(rows: rows, changes: statement.isReadonly ? 0 : db.changesCount)
        } catch let error as DatabaseError {
            throw SQLError.statementFailed(sql: sql, reason: error.message ?? "\(error.resultCode)")
        }
    }

    private static func databaseValue(_ value: SQLValue) -> DatabaseValue {
        switch value {
        case .null: .null
        case .integer(let integer): integer.databaseValue
        case .real(let real): real.databaseValue
        case .text(let text): text.databaseValue
        case .blob(let data): data.databaseValue
        }
    }

    private static func value(_ value: DatabaseValue) -> SQLValue {
        switch value.storage {
        case .null: .null
        case .int64(let integer): .integer(integer)
        case .double(let real): .real(real)
        case .string(let text): .text(text)
        case .blob(let data): .blob(data)
        }
    }
}
