import GRDB

/// What drift adds to the workspace database (migration "v8: input drift"): each model
/// version's baseline, and the latest PSI per device, module and feature.
enum DriftSchema {
    static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v8: input drift") { db in
            // The training inputs' summaries and bins (DriftBaseline, JSON).
            try db.alter(table: "model") { t in t.add(column: "baseline", .text) }
            // No foreign key to `device`, as for deviceHealth: written by the health batches.
            try db.create(table: "inputDrift") { t in
                t.column("deviceId", .text).notNull()
                t.column("module", .text).notNull()
                t.column("feature", .text).notNull()
                t.column("bundle", .text).notNull()
                t.column("psi", .double).notNull()
                t.column("count", .integer).notNull()
                t.column("windowEnd", .datetime).notNull()
                t.primaryKey(["deviceId", "module", "feature"])
            }
        }
    }
}
