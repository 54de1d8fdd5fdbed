/// One row of a result, read by column name (case-insensitive, as both databases
/// treat unquoted names) or by position.
public struct SQLRow: Sendable {
    /// The result's column names, lowercased once for all its rows.
    let columns: SQLColumns
    public let values: [SQLValue]

    /// The column names, as the query's result named them.
    public var columnNames: [String] { columns.names }

    init(columns: SQLColumns, values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    /// The value of `column`, or `nil` when it is NULL or absent.
    public subscript<T: SQLColumnValue>(_ column: String) -> T? {
        guard let index = columns.index(of: column) else { return nil }
        return self[index]
    }

    /// The value of `column`; a NULL, an absent column or a value of another type is a
    /// programming error (the schema and the query disagree) and stops the process.
    public subscript<T: SQLColumnValue>(_ column: String) -> T {
        guard let index = columns.index(of: column) else {
            preconditionFailure("SQL row has no column '\(column)' (columns: \(columns.names.joined(separator: ", ")))")
        }
        return self[index]
    }

    public subscript<T: SQLColumnValue>(_ index: Int) -> T? {
        if case .null = values[index] { return nil }
        return Self.convert(values[index], column: columns.names[index])
    }

    public subscript<T: SQLColumnValue>(_ index: Int) -> T {
        Self.convert(values[index], column: columns.names[index])
    }

    private static func convert<T: SQLColumnValue>(_ value: SQLValue, column: String) -> T {
        guard let converted = T(sqlValue: value) else {
            preconditionFailure("SQL column '\(column)' holds \(value), which is not a \(T.self)")
        }
        return converted
    }
}

/// A result's column names, shared by its rows.
final class SQLColumns: Sendable {
    let names: [String]
    private let lowercased: [String]

    init(_ names: [String]) {
        self.names = names
        self.lowercased = names.map { $0.lowercased() }
    }

    func index(of column: String) -> Int? {
        if let exact = names.firstIndex(of: column) { return exact }
        return lowercased.firstIndex(of: column.lowercased())
    }
}
