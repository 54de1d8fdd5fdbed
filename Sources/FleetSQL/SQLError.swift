import Foundation

/// Why the hub's database could not be opened or a statement failed.
public enum SQLError: Error, CustomStringConvertible, Equatable {
    /// `location` is neither a file path nor a `postgres://` URL.
    case unsupportedLocation(String)
    case invalidPostgresURL(String, reason: String)
    case connectionFailed(String, reason: String)
    case statementFailed(sql: String, reason: String)
    case migrationFailed(String, reason: String)
    /// The database was to be new, but it has applied migrations already.
    case notEmpty(String)
    /// A column held a type the SQL layer does not read (for example a PostgreSQL array).
    case unsupportedColumnType(column: String, type: String)

    public var description: String {
        switch self {
        case .unsupportedLocation(let location):
            "database '\(location)' is neither a SQLite file path nor a postgres://user@host:port/database URL"
        case .invalidPostgresURL(let url, let reason):
            "database URL '\(url)' is not usable: \(reason) (expected postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require|verify-full])"
        case .connectionFailed(let url, let reason):
            "cannot connect to the database at \(url): \(reason); check that PostgreSQL runs there and that the user, password and database are right"
        case .statementFailed(let sql, let reason):
            "database statement failed: \(reason) (statement: \(sql.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")))"
        case .migrationFailed(let name, let reason):
            "database migration '\(name)' failed: \(reason); the database is left at the migration before it"
        case .notEmpty(let location):
            "the database \(location) is not empty: it has applied schema migrations already"
        case .unsupportedColumnType(let column, let type):
            "database column '\(column)' has type \(type), which the hub does not read"
        }
    }
}
