import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Synchronization
import Testing

/// Several operators on one hub at once, each with the real `fleethub`: packaging a
/// large model builds its bundle before it takes the database's write lock, so the
/// other commands never meet "database is locked".
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct ConcurrentCommandsTests {
    /// `device tag` runs in `lanes` lanes, one after another in each, from when packaging
    /// starts until it has ended and at least this many ran.
    static let tagCommands = 100
    static let lanes = 4

    @Test func deviceTagsNeverFailWhileA300MBModelIsPackaged() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let directory = try TemporaryDirectory(prefix: "fleethub-concurrent")
        let workspace = directory.file("hub")
        func hub(_ arguments: String...) throws -> String {
            try Fixtures.run(CommandLineTests.executable, try HubTestDatabase.arguments(arguments) + ["--workspace", workspace])
        }
        _ = try hub("init", "--broker", broker.url, "--public-url", "http://127.0.0.1:8080", "--insecure", "--insecure-http")
        for lane in 1...Self.lanes {
            _ = try hub("device", "add", "gw-\(lane)", "--out", directory.file("gw-\(lane).yaml"))
        }
        // 300 MB at once: a sparse file, read back as zeros.
        let weights = directory.file("weights.bin")
        #expect(FileManager.default.createFile(atPath: weights, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: weights))
        try handle.truncate(atOffset: 300_000_000)
        try handle.close()
        _ = try hub("model", "register", "--name", "big", "--path", weights)

        let packaging = try ChildProcess(
            CommandLineTests.executable,
            ["module", "package", "--name", "big-agent", "--kind", "process", "--command", "/bin/true", "--model", "big:1",
             "--workspace", workspace],
            outputPath: directory.file("package.log"))
        defer { packaging.stop() }
        let started = ContinuousClock.now
        let counts = TagCounts()
        let failures = try await withThrowingTaskGroup(of: [String].self) { group in
            for lane in 1...Self.lanes {
                group.addTask {
                    var failures: [String] = []
                    while packaging.isRunning || counts.launched.load(ordering: .relaxed) < Self.tagCommands {
                        let run = counts.launched.add(1, ordering: .relaxed).newValue
                        let log = directory.file("tag-\(run).log")
                        let tag = try ChildProcess(
                            CommandLineTests.executable,
                            ["device", "tag", "gw-\(lane)", "--tag", "run=\(run)", "--workspace", workspace], outputPath: log)
                        let status = try await tag.waitForExit(timeout: .seconds(60))
                        if packaging.isRunning { counts.whilePackaging.add(1, ordering: .relaxed) }
                        if status != 0 {
                            failures.append("device tag \(run): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
                        }
                    }
                    return failures
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let packaged = try await packaging.waitForExit(timeout: .seconds(120))
        let packageLog = (try? String(contentsOfFile: directory.file("package.log"), encoding: .utf8)) ?? ""
        #expect(packaged == 0, "module package failed: \(packageLog)")
        #expect(failures.isEmpty, "\(failures.count) of \(counts.launched.load(ordering: .relaxed)) device tags failed: \(failures.prefix(3))")
        #expect(
            counts.whilePackaging.load(ordering: .relaxed) >= Self.tagCommands / 5,
            "only \(counts.whilePackaging.load(ordering: .relaxed)) device tags ended while packaging ran (\(ContinuousClock.now - started)): the others waited for its write lock")
        let module = try FleetJSON.decode(ModuleVersion.self, from: Data(hub("module", "show", "big-agent:1", "--json").utf8))
        #expect(module.models == ["big:1"])
    }
}

/// How many `device tag` commands were started, and how many ended while packaging ran.
private final class TagCounts: Sendable {
    let launched = Atomic(0)
    let whilePackaging = Atomic(0)
}
