import FleetSQL

extension VersionedName {
    /// The row of `table` (models or modules) this reference names: that version, or
    /// the latest when the reference has none.
    func row(in table: String, selecting columns: String = "*", db: SQLTransaction) throws -> SQLRow? {
        if let version {
            return try db.row("SELECT \(columns) FROM \(table) WHERE name = ? AND version = ?", [name, version])
        }
        return try db.row("SELECT \(columns) FROM \(table) WHERE name = ? ORDER BY version DESC LIMIT 1", [name])
    }
}
