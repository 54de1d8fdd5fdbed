import GRDB

/// Opens the workspace's SQLite database and brings its schema up to date. Every
/// schema change is a new named migration appended here, never an edit of an old one.
enum HubDatabase {
    static func open(at path: String) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.foreignKeysEnabled = true
        let pool = try DatabasePool(path: path, configuration: configuration)
        try migrator.migrate(pool)
        return pool
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: registry, devices, deployments") { db in
            try db.create(table: "model") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("description", .text)
                t.column("createdAt", .datetime).notNull()
                t.uniqueKey(["name", "version"])
            }
            try db.create(table: "modelTag") { t in
                t.belongsTo("model", onDelete: .cascade).notNull()
                t.column("key", .text).notNull()
                t.column("value", .text).notNull()
                t.primaryKey(["modelId", "key"])
            }
            try db.create(table: "modelFile") { t in
                t.belongsTo("model", onDelete: .cascade).notNull()
                t.column("path", .text).notNull()
                t.column("digest", .text).notNull()
                t.column("size", .integer).notNull()
                t.primaryKey(["modelId", "path"])
            }
            try db.create(table: "module") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("kind", .text).notNull()
                t.column("digest", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("manifest", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.uniqueKey(["name", "version"])
            }
            try db.create(table: "moduleModel") { t in
                t.belongsTo("module", onDelete: .cascade).notNull()
                t.belongsTo("model", onDelete: .cascade).notNull()
                t.primaryKey(["moduleId", "modelId"])
            }
            try db.create(table: "device") { t in
                t.primaryKey("id", .text)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "deviceTag") { t in
                t.belongsTo("device", onDelete: .cascade).notNull()
                t.column("key", .text).notNull()
                t.column("value", .text).notNull()
                t.primaryKey(["deviceId", "key"])
            }
            try db.create(table: "deployment") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("priority", .integer).notNull()
                t.column("target", .text).notNull()
                t.column("definition", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
            try db.create(table: "deploymentModule") { t in
                t.belongsTo("deployment", onDelete: .cascade).notNull()
                t.belongsTo("module", onDelete: .restrict).notNull()
                t.primaryKey(["deploymentId", "moduleId"])
            }
            // Kept when a device is removed, so a device added again under the same id
            // continues with a higher revision than any it has seen.
            try db.create(table: "desiredState") { t in
                t.primaryKey("deviceId", .text)
                t.column("revision", .integer).notNull()
                t.column("content", .text).notNull()
                t.column("envelope", .blob).notNull()
                t.column("publishedRevision", .integer).notNull().defaults(to: 0)
            }
        }
        migrator.registerMigration("v2: device broker credentials") { db in
            // Only a salted PBKDF2 hash; the password itself is in the device's config file.
            try db.create(table: "deviceCredential") { t in
                t.primaryKey("deviceId", .text).references("device", onDelete: .cascade)
                t.column("passwordHash", .text).notNull()
            }
        }
        HealthSchema.register(in: &migrator)
        RolloutSchema.register(in: &migrator)
        migrator.registerMigration("v5: previous desired state") { db in
            // The content staged before the current one: its bundles stay downloadable,
            // so a device without a cache can still roll back (BundleGrants).
            try db.alter(table: "desiredState") { t in t.add(column: "previousContent", .text) }
        }
        migrator.registerMigration("v6: model flavour and signature") { db in
            // What a no-code module serves (`onnx`, `mlflow`) and the model's inputs and outputs (JSON).
            try db.alter(table: "model") { t in
                t.add(column: "flavour", .text)
                t.add(column: "signature", .text)
            }
        }
        DriftSchema.register(in: &migrator)
        return migrator
    }
}
