import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// Right after the real `fleethub init` and `device add`, the workspace folder is 0700
/// and every file holding a secret (keys, tokens, the database with the broker
/// password hashes, its WAL files, the device config and key) is 0600.
struct SecretModesCommandLineTests {
    func mode(_ path: String) throws -> Int {
        try #require((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue)
    }

    @Test func initAndDeviceAddLeaveOnlyOwnerReadableSecrets() async throws {
        let directory = try TemporaryDirectory(prefix: "fleethub-modes")
        let workspace = directory.file("hub")
        func hub(_ arguments: String...) async throws -> (status: Int32, output: String) {
            let log = directory.file("command-\(UUID().uuidString).log")
            let process = try ChildProcess(CommandLineTests.executable, try HubTestDatabase.arguments(arguments) + ["--workspace", workspace], outputPath: log)
            let status = try await process.waitForExit()
            return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        let initialised = try await hub("init", "--broker", "mqtts://127.0.0.1:1", "--public-url", "https://127.0.0.1:8080")
        #expect(initialised.status == 0, "\(initialised.output)")
        #expect(try mode(workspace) == 0o700)
        // On PostgreSQL the registry is not a file of the workspace.
        let database = HubTestDatabase.isPostgres ? [] : ["hub.sqlite"]
        for file in database + ["config.json", "hub-signing.key", "ca/ca.key", "ca/hub.key", "ca/broker.key", "ca/https.key"] {
            #expect(try mode("\(workspace)/\(file)") == 0o600, "\(file)")
        }

        try FileManager.default.createDirectory(atPath: directory.file("devices"), withIntermediateDirectories: true)
        // No broker listens: once the device's files are written, the command keeps
        // retrying the publish; it is stopped then.
        let log = directory.file("device-add.log")
        let adding = try ChildProcess(
            CommandLineTests.executable,
            ["device", "add", "gw-a", "--out", directory.file("devices/gw-a.yaml"), "--workspace", workspace], outputPath: log)
        defer { adding.stop() }
        // The config is renamed into place complete, after the key and the token.
        #expect(try await eventually { FileManager.default.fileExists(atPath: directory.file("devices/gw-a.yaml")) })
        for file in ["devices/gw-a.yaml", "devices/gw-a.key", "hub/http-access.json"] {
            #expect(try mode(directory.file(file)) == 0o600, "\(file)")
        }

        // SQLite gives the WAL and shared-memory files the database file's mode.
        let opened = try Workspace.open(at: URL(fileURLWithPath: workspace))
        _ = try DeviceRegistry(workspace: opened).list()
        for file in HubTestDatabase.isPostgres ? [] : ["hub.sqlite-wal", "hub.sqlite-shm"] {
            #expect(try mode("\(workspace)/\(file)") == 0o600, "\(file)")
        }
    }
}
