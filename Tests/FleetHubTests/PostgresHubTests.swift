import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// A hub on PostgreSQL through the real `fleethub` binary: an embedded hub moved there
/// keeps everything and goes on, a second `init` on a database holding a hub is refused,
/// and PostgreSQL's own client sees the rows.
@Suite(.enabled(if: PostgresServer.shouldRun)) struct PostgresHubTests {
    @Test func anEmbeddedHubMovesToPostgresKeepsEverythingAndGoesOn() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let server = try PostgresServer.shared()
        let directory = try TemporaryDirectory(prefix: "fleethub-migrate")
        let workspace = directory.file("hub")
        func hub(_ arguments: String...) throws -> String {
            try Fixtures.run(CommandLineTests.executable, arguments + ["--workspace", workspace])
        }
        // An embedded hub (no --database) with models, modules, devices, a deployment and a rollout's records.
        _ = try hub("init", "--broker", broker.url, "--public-url", "http://127.0.0.1:8080", "--insecure", "--insecure-http")
        try Data("weights".utf8).write(to: URL(fileURLWithPath: directory.file("iris.onnx")))
        try FileManager.default.createDirectory(atPath: directory.file("src"), withIntermediateDirectories: true)
        try Data("def init():\n    pass\n\ndef run(raw_data):\n    return raw_data\n".utf8)
            .write(to: URL(fileURLWithPath: directory.file("src/score.py")))
        _ = try hub("model", "register", "--name", "iris", "--path", directory.file("iris.onnx"), "--tag", "owner=ana")
        _ = try hub("module", "package", "--name", "scorer", "--model", "iris", "--entry", "score.py", "--source", directory.file("src"))
        for id in ["gw-1", "gw-2", "cam-1"] {
            _ = try hub("device", "add", id, "--tag", "site=a", "--out", directory.file("\(id).yaml"))
        }
        try "name: d\ntarget: site=a\nmodules:\n  - name: s\n    bundle: scorer:1\n".write(
            toFile: directory.file("d.yaml"), atomically: true, encoding: .utf8)
        _ = try hub("deploy", directory.file("d.yaml"))
        let views = [
            ["model", "list", "--json"], ["module", "list", "--json"], ["device", "list", "--json"],
            ["device", "show", "gw-1", "--json"], ["deployment", "history", "d"], ["devices", "--json"],
        ]
        func snapshot() throws -> [String] {
            try views.map { try Fixtures.run(CommandLineTests.executable, $0 + ["--workspace", workspace]) }
        }
        let before = try snapshot()

        let url = try server.createDatabase()
        let moved = try hub("migrate", "--to", url)
        #expect(moved.contains("device: 3 row(s)") && moved.contains("desiredState: 3 row(s)"), "\(moved)")
        #expect(!moved.contains(server.password), "the password is printed: \(moved)")
        let after = try snapshot()
        for (view, (old, new)) in zip(views, zip(before, after)) {
            #expect(old == new, "\(view.joined(separator: " ")) differs after the move:\n\(old)\n---\n\(new)")
        }
        let shown = try hub("config", "show")
        #expect(shown.contains("database: postgres://fleethub@127.0.0.1:\(server.port)/") && !shown.contains(server.password), "\(shown)")
        let database = String(url.split(separator: "/").last!.split(separator: "?").first!)
        #expect(try server.psql("SELECT COUNT(*) FROM device", database: database) == "3\n")

        // It goes on where the SQLite file left off: new ids, new versions, new revisions.
        _ = try hub("model", "register", "--name", "iris", "--path", directory.file("iris.onnx"))
        _ = try hub("module", "package", "--name", "scorer", "--model", "iris:2", "--entry", "score.py", "--source", directory.file("src"))
        try "name: d\ntarget: site=a\nmodules:\n  - name: s\n    bundle: scorer:2\n".write(
            toFile: directory.file("d.yaml"), atomically: true, encoding: .utf8)
        _ = try hub("deploy", directory.file("d.yaml"))
        let revisions = try FleetJSON.decode([Device].self, from: Data(hub("device", "list", "--json").utf8)).map(\.revision)
        let old = try FleetJSON.decode([Device].self, from: Data(before[2].utf8)).map(\.revision)
        #expect(zip(revisions, old).allSatisfy { ($0 ?? 0) > ($1 ?? 0) }, "revisions \(old) → \(revisions)")
        #expect(try server.psql("SELECT COUNT(*) FROM module", database: database) == "2\n")

        // Moving again, or onto a database that holds a hub, is refused and changes nothing.
        #expect { try hub("migrate", "--to", url) } throws: { error in "\(error)".contains("on SQLite") }
        let other = directory.file("other")
        _ = try Fixtures.run(CommandLineTests.executable, ["init", "--insecure", "--broker", broker.url, "--workspace", other])
        #expect {
            try Fixtures.run(CommandLineTests.executable, ["migrate", "--to", url, "--workspace", other])
        } throws: { error in
            "\(error)".contains("already holds a hub")
        }
        #expect(try Fixtures.run(CommandLineTests.executable, ["device", "list", "--workspace", other]).contains("gw-1") == false)
    }

    @Test func initOnADatabaseThatHoldsAHubIsRefused() throws {
        let server = try PostgresServer.shared()
        let directory = try TemporaryDirectory(prefix: "fleethub-pg-init")
        let url = try server.createDatabase()
        _ = try Fixtures.run(CommandLineTests.executable, ["init", "--insecure", "--database", url, "--workspace", directory.file("a")])
        #expect {
            try Fixtures.run(CommandLineTests.executable, ["init", "--insecure", "--database", url, "--workspace", directory.file("b")])
        } throws: { error in
            "\(error)".contains("already holds a hub") && "\(error)".contains("copy its workspace folder")
        }
        #expect {
            try Fixtures.run(CommandLineTests.executable, ["init", "--insecure", "--database", "mysql://x/y", "--workspace", directory.file("c")])
        } throws: { error in
            "\(error)".contains("neither a SQLite file path nor a postgres://")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.file("c/config.json")))
    }
}
