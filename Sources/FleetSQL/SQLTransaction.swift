/// The one way the hub's stores talk to their database, inside a transaction that
/// `SQLDatabase.read` or `write` opened. Queries are written once, with `?` (or `?1`,
/// `?2`) placeholders, in the SQL both SQLite and PostgreSQL accept: `ON CONFLICT`
/// instead of `INSERT OR …`, `RETURNING` instead of the last row id, `CAST` where a
/// bare placeholder would have no type.
public final class SQLTransaction {
    /// Which database runs the statements, for the few that must differ (DDL).
    public let dialect: SQLDialect
    private let statements: any SQLStatementRunner

    init(dialect: SQLDialect, statements: any SQLStatementRunner) {
        self.dialect = dialect
        self.statements = statements
    }

    /// Runs a statement and returns how many rows it inserted, changed or deleted.
    @discardableResult
    public func execute(_ sql: String, _ arguments: [any SQLArgument] = []) throws -> Int {
        try statements.run(sql, arguments.map(\.sqlValue)).changes
    }

    /// Runs an INSERT into a table with an `id` key the database assigns, and returns that id.
    public func insert(_ sql: String, _ arguments: [any SQLArgument] = []) throws -> Int64 {
        guard let id = try value(as: Int64.self, sql + " RETURNING id", arguments) else {
            throw SQLError.statementFailed(sql: sql, reason: "the database returned no id for the inserted row")
        }
        return id
    }

    public func rows(_ sql: String, _ arguments: [any SQLArgument] = []) throws -> [SQLRow] {
        try statements.run(sql, arguments.map(\.sqlValue)).rows
    }

    public func row(_ sql: String, _ arguments: [any SQLArgument] = []) throws -> SQLRow? {
        try rows(sql, arguments).first
    }

    /// The first column of the first row, or `nil` when there is no row or it is NULL.
    public func value<T: SQLColumnValue>(as type: T.Type = T.self, _ sql: String, _ arguments: [any SQLArgument] = []) throws -> T? {
        guard let row = try row(sql, arguments), !row.values.isEmpty else { return nil }
        return row[0]
    }

    /// The first column of every row (NULLs left out).
    public func values<T: SQLColumnValue>(as type: T.Type = T.self, _ sql: String, _ arguments: [any SQLArgument] = []) throws -> [T] {
        try rows(sql, arguments).compactMap { row in row[0] }
    }

    public func valueSet<T: SQLColumnValue & Hashable>(as type: T.Type = T.self, _ sql: String, _ arguments: [any SQLArgument] = []) throws -> Set<T> {
        Set(try values(as: type, sql, arguments))
    }
}

/// The two databases a hub can run on.
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// What a statement gave back.
struct SQLResult {
    var rows: [SQLRow]
    var changes: Int
}

/// Runs one statement on an engine's connection.
protocol SQLStatementRunner {
    func run(_ sql: String, _ arguments: [SQLValue]) throws -> SQLResult
}
