import GRDB

/// The tables fleet health adds to the workspace database (migration "v3-health"):
/// each device's latest report and connection state, a bounded history of small
/// samples for the dashboard's charts, and the counts of rejected messages.
enum HealthSchema {
    static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-health") { db in
            // No foreign key to `device`: a batch written just after a device was removed
            // must not fail; readers join on the registered devices.
            try db.create(table: "deviceHealth") { t in
                t.primaryKey("deviceId", .text)
                t.column("report", .text)
                t.column("reportedAt", .datetime)
                t.column("lastSeenAt", .datetime).notNull()
                t.column("online", .boolean)
                t.column("connectionChangedAt", .datetime)
            }
            try db.create(table: "healthSample") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("deviceId", .text).notNull()
                t.column("receivedAt", .datetime).notNull()
                t.column("cpuPercent", .double).notNull()
                t.column("memUsedBytes", .integer).notNull()
                t.column("modulesRunning", .integer).notNull()
                t.column("restarts", .integer).notNull()
                t.column("telemetryBuffered", .integer).notNull()
                t.column("p99Ms", .double)
            }
            try db.create(index: "healthSampleByDevice", on: "healthSample", columns: ["deviceId", "id"])
            try db.create(table: "healthRejection") { t in
                t.primaryKey("reason", .text)
                t.column("count", .integer).notNull()
                t.column("lastTopic", .text).notNull()
                t.column("lastError", .text).notNull()
                t.column("lastAt", .datetime).notNull()
            }
        }
    }
}
