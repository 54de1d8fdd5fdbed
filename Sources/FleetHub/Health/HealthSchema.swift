import GRDB

/// The tables fleet health adds to the workspace database (migration "v3-health"):
/// each device's latest report and connection state, a bounded history of small
/// samples for the dashboard's charts, and the counts of rejected messages; and
/// (migration "v7") what lets a long-lived reader fetch only what changed.
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
        migrator.registerMigration("v7: change tracking") { db in
            // Which health rows a long-lived reader has not seen yet (FleetReadCache).
            try db.alter(table: "deviceHealth") { t in t.add(column: "changeSeq", .integer).notNull().defaults(to: 0) }
            try db.create(index: "deviceHealthByChange", on: "deviceHealth", columns: ["changeSeq"])
            // Whether the device list or the module labels changed since it last read them.
            try db.create(table: "hubChange") { t in
                t.primaryKey("topic", .text)
                t.column("version", .integer).notNull()
            }
            for (topic, tables) in Self.changeTracked {
                try db.execute(sql: "INSERT INTO hubChange (topic, version) VALUES (?, 0)", arguments: [topic])
                for table in tables {
                    for operation in ["INSERT", "UPDATE", "DELETE"] {
                        try db.execute(sql: """
                            CREATE TRIGGER \(table)\(operation.capitalized)Counts AFTER \(operation) ON \(table)
                            BEGIN UPDATE hubChange SET version = version + 1 WHERE topic = '\(topic)'; END
                            """)
                    }
                }
            }
        }
    }

    /// The tables whose changes move each `hubChange` counter.
    static let changeTracked = [
        "devices": ["device", "deviceTag", "desiredState"],
        "modules": ["module", "moduleModel", "model"],
    ]
}
