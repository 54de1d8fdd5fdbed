import GRDB

extension VersionedName {
    /// The row of `table` (models or modules) this reference names: that version, or
    /// the latest when the reference has none.
    func row(in table: String, selecting columns: String = "*", db: Database) throws -> Row? {
        if let version {
            return try Row.fetchOne(
                db, sql: "SELECT \(columns) FROM \(table) WHERE name = ? AND version = ?", arguments: [name, version])
        }
        return try Row.fetchOne(
            db, sql: "SELECT \(columns) FROM \(table) WHERE name = ? ORDER BY version DESC LIMIT 1", arguments: [name])
    }
}
