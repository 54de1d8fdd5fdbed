import FleetSQL
import Foundation

/// `fleethub migrate --to postgres://…`: copies an embedded hub's database into an empty
/// PostgreSQL database in one transaction, then points the workspace at it. The SQLite
/// file is left as it was, as a backup; a failed move changes neither database nor config.
public struct DatabaseMove {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// Every hub table, parents before the tables that refer to them.
    static let tables = [
        "model", "modelTag", "modelFile", "module", "moduleModel", "device", "deviceTag", "deviceCredential",
        "deployment", "deploymentModule", "deploymentVersion", "deploymentAssignment", "rollout", "desiredState",
        "deviceHealth", "healthSample", "healthRejection", "hubChange", "inputDrift",
    ]
    /// The tables whose `id` the database assigns: their sequences continue after the copied ids.
    static let assignedIDs = ["model", "module", "deployment", "healthSample", "rollout"]

    /// Copies every row and returns the number copied per table.
    public func move(to target: String) throws -> [(table: String, rows: Int)] {
        let location = try SQLLocation(parsing: target)
        guard case .postgres = location else {
            throw WorkspaceError.invalidSetting("migrate --to", value: target, expected: "a postgres://user@host:port/database URL")
        }
        guard case .sqlite = workspace.database.location else {
            throw WorkspaceError.invalidSetting(
                "migrate --to", value: target, expected: "a hub on SQLite (this one is on \(workspace.database.location) already)")
        }
        let destination = try HubDatabase.open(location, creating: true)
        let copied = try destination.write { target in
            try Self.tables.map { table in
                let rows = try workspace.database.read { source in try source.rows("SELECT * FROM \(table)") }
                // The migrations' own rows (the change counters) give way to the copied ones.
                try target.execute("DELETE FROM \(table)")
                try Self.insert(rows, into: table, target)
                return (table, rows.count)
            }
        }
        try destination.write { target in
            for table in Self.assignedIDs {
                try target.execute(
                    "SELECT setval(pg_get_serial_sequence('\(table.lowercased())', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM \(table)")
            }
        }
        try workspace.set(HubConfig.Key.database.rawValue, to: target)
        return copied
    }

    private static func insert(_ rows: [SQLRow], into table: String, _ target: SQLTransaction) throws {
        guard let columns = rows.first?.columnNames else { return }
        try target.insert("INSERT INTO \(table) (\(columns.joined(separator: ", ")))", rows: rows.map(\.values))
    }
}
