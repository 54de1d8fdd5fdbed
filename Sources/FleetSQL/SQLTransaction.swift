import Foundation

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
        try statements.run(sql, arguments.map(\.sqlValue), generated: false).changes
    }

    /// Runs an INSERT into a table with an `id` key the database assigns, and returns that id.
    public func insert(_ sql: String, _ arguments: [any SQLArgument] = []) throws -> Int64 {
        guard let id = try value(as: Int64.self, sql + " RETURNING id", arguments) else {
            throw SQLError.statementFailed(sql: sql, reason: "the database returned no id for the inserted row")
        }
        return id
    }

    /// Runs `head VALUES (…), (…) tail` for many rows in as few statements as the
    /// databases' limits on bound values allow: a round trip per thousands of rows, not
    /// per row. Every row has the same number of values.
    public func insert(_ head: String, rows: [[any SQLArgument]], _ tail: String = "") throws {
        guard let width = rows.first?.count, width > 0 else { return }
        let tuple = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        for chunk in rows.chunks(of: max(1, Self.maximumArguments / width)) {
            _ = try statements.run(
                head + " VALUES " + Array(repeating: tuple, count: chunk.count).joined(separator: ", ") + (tail.isEmpty ? "" : "\n" + tail),
                chunk.flatMap { $0 }.map(\.sqlValue), generated: true)
        }
    }

    /// Runs `sql`, in which `(?…)` stands for a parenthesised list of placeholders, once
    /// per slice of `values` the databases' limits allow (`WHERE id IN (?…)`); `after`
    /// are the arguments of the placeholders that follow the list. Returns the rows changed.
    @discardableResult
    public func execute(_ sql: String, each values: [any SQLArgument], after: [any SQLArgument] = []) throws -> Int {
        var changed = 0
        for chunk in values.chunks(of: Self.maximumArguments - after.count) {
            let list = "(" + Array(repeating: "?", count: chunk.count).joined(separator: ", ") + ")"
            changed += try statements.run(
                sql.replacingOccurrences(of: "(?…)", with: list), (Array(chunk) + after).map(\.sqlValue), generated: true
            ).changes
        }
        return changed
    }

    /// Below SQLite's default limit on bound values (32,766) and PostgreSQL's (65,535).
    static let maximumArguments = 30_000

    public func rows(_ sql: String, _ arguments: [any SQLArgument] = []) throws -> [SQLRow] {
        try statements.run(sql, arguments.map(\.sqlValue), generated: false).rows
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

extension Array {
    fileprivate func chunks(of size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
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

/// Runs one statement on an engine's connection. A `generated` statement (a many-row
/// insert, a list of placeholders) differs in length from one call to the next, so the
/// engine does not keep what it prepared or translated for it: its caches stay bounded.
protocol SQLStatementRunner {
    func run(_ sql: String, _ arguments: [SQLValue], generated: Bool) throws -> SQLResult
}
