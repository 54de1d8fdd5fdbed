import GRDB

/// The tables deployment versions and staged rollouts add to the workspace database
/// (migration "v4-rollouts").
///
/// - `deploymentVersion`: every version of every deployment, kept after the
///   deployment is deleted, so versions are never reused and history stays readable.
/// - `deployment.stableVersion`: the version a targeted device runs unless a rollout
///   assigned it another (`deploymentAssignment`); nil while a first rollout has not
///   completed. `stablePromoted`: that version with its shadows made live.
/// - `deploymentAssignment`: per device, the version a rollout put it on, and the first
///   desired revision that carried it (0 until staged), so reports can be matched.
/// - `rollout`: one row per rollout, the state machine `fleethub serve` advances.
enum RolloutSchema {
    static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4-rollouts") { db in
            try db.create(table: "deploymentVersion") { t in
                t.column("deployment", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("manifest", .text).notNull()
                t.column("definition", .text).notNull()
                t.column("origin", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.primaryKey(["deployment", "version"])
            }
            try db.alter(table: "deployment") { t in
                t.add(column: "version", .integer).notNull().defaults(to: 1)
                t.add(column: "stableVersion", .integer)
                t.add(column: "stablePromoted", .boolean).notNull().defaults(to: false)
            }
            try db.execute(sql: "UPDATE deployment SET definition = json_set(definition, '$.version', 1), stableVersion = 1")
            try db.execute(
                sql: """
                    INSERT INTO deploymentVersion (deployment, version, manifest, definition, origin, createdAt)
                    SELECT name, 1, '', definition, 'deploy', updatedAt FROM deployment
                    """)
            try db.create(table: "deploymentAssignment") { t in
                t.column("deployment", .text).notNull()
                t.column("deviceId", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("promoted", .boolean).notNull()
                t.column("revision", .integer).notNull().defaults(to: 0)
                t.column("assignedAt", .datetime).notNull()
                t.primaryKey(["deployment", "deviceId"])
            }
            try db.create(table: "rollout") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("deployment", .text).notNull().indexed()
                t.column("version", .integer).notNull()
                t.column("record", .text).notNull()
                t.column("state", .text).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
        }
    }
}
