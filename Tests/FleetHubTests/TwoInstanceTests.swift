import FleetCore
import FleetHub
import FleetSQL
import FleetTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Two `fleethub serve` instances of one hub (copies of one workspace folder on one
/// PostgreSQL database) and a fleet of simulated devices on a real mosquitto.
@Suite(
    .enabled(if: PostgresServer.shouldRun)) struct TwoInstanceTests {
    static let devices = 300

    @Test func bothInstancesIngestAShareAndTheSurvivorOfAKillNineGoesOnLosingNoMoreThanTheBatchInFlight() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let directory = try TemporaryDirectory(prefix: "fleethub-two")
        let first = directory.url.appendingPathComponent("hub-a")
        let workspace = try Workspace.create(
            at: first,
            config: HubConfig(
                broker: broker.url, publicURL: "http://127.0.0.1:8080", insecure: true, insecureHTTP: true,
                database: try PostgresServer.shared().createDatabase()))
        try await workspace.database.write { db in
            for index in 0..<Self.devices {
                try db.execute("INSERT INTO device (id, createdAt) VALUES (?, ?)", [String(format: "sim-%05d", index), Date()])
            }
        }
        // The tokens first: the copy is of the whole hub, its HTTP tokens included.
        let token = try HTTPAccess.load(from: workspace).viewerToken
        let second = directory.url.appendingPathComponent("hub-b")
        try FileManager.default.copyItem(at: first, to: second)
        let ports = [try Fixtures.freePort(), try Fixtures.freePort()]
        let serves = try [first, second].enumerated().map { index, root in
            try ChildProcess(
                CommandLineTests.executable, ["serve", "--workspace", root.path, "--http", "127.0.0.1:\(ports[index])"],
                outputPath: directory.file("serve-\(index).log"))
        }
        defer { for serve in serves { serve.stop() } }
        func log(_ index: Int) -> String { (try? String(contentsOfFile: directory.file("serve-\(index).log"), encoding: .utf8)) ?? "" }
        func get(_ port: Int, _ path: String) async throws -> Data {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
            return try await URLSession.shared.data(for: request).0
        }
        func ingested(_ port: Int) async -> Double {
            guard let text = try? String(decoding: await get(port, "/metrics"), as: UTF8.self),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("fleethub_reports_ingested_total ") })
            else { return 0 }
            return Double(line.split(separator: " ")[1]) ?? 0
        }
        #expect(await eventually(timeout: .seconds(30)) { ports.allSatisfy(Fixtures.isListening(port:)) }, "\(log(0))\n\(log(1))")

        let summary = directory.file("simulator.json")
        let simulator = try ChildProcess(
            Fixtures.builtExecutable("fleet-simulator"),
            ["--broker", broker.url, "--devices", "\(Self.devices)", "--interval", "1", "--duration", "25", "--summary", summary],
            outputPath: directory.file("simulator.log"))
        defer { simulator.stop() }

        // The shared subscription splits the reports between the two.
        let shared = await eventually(timeout: .seconds(30)) {
            let (a, b) = (await ingested(ports[0]), await ingested(ports[1]))
            return a > 200 && b > 200
        }
        let shares = (await ingested(ports[0]), await ingested(ports[1]))
        let metricsB = String(decoding: try await get(ports[1], "/metrics"), as: UTF8.self)
        #expect(shared, "each instance ingests a share: \(shares)\nB metrics: \(metricsB)\nB log: \(log(1))")

        serves[0].signal(SIGKILL)
        _ = try await serves[0].waitForExit()
        let killedAt = Date()
        // Every device's reports now reach the survivor, which stores them.
        let survivor = try Workspace.open(at: second)
        let caughtUp = try await eventually(timeout: .seconds(20)) {
            let seen = try FleetHealth(workspace: survivor).devices().filter { ($0.lastSeen ?? .distantPast) > killedAt.addingTimeInterval(2) }
            return seen.count == Self.devices
        }
        #expect(caughtUp, "the survivor does not ingest every device after the kill; its log:\n\(log(1))")
        // Its dashboard and API show every device, online.
        let overview = try JSONDecoder().decode(OnlineCount.self, from: try await get(ports[1], "/v1/health/overview"))
        #expect(overview.devices == Self.devices && overview.online == Self.devices, "\(overview)")
        let page = String(decoding: try await get(ports[1], "/"), as: UTF8.self)
        #expect(page.contains("\(Self.devices)"), "the dashboard overview does not count \(Self.devices) devices")

        // Nothing is lost beyond what the killed instance held: at most its last
        // half-second batch and what the broker had sent it, two seconds of its share
        // (the devices' reports on connecting are stored but not in the published count).
        _ = try await simulator.waitForExit(timeout: .seconds(90))
        let published = try JSONDecoder().decode(SimulatorCount.self, from: Data(contentsOf: URL(fileURLWithPath: summary))).reportsPublished
        let stored = try await eventually(timeout: .seconds(10)) {
            let count = try survivor.database.read { db in try db.value(as: Int.self, "SELECT COUNT(*) FROM healthSample") } ?? 0
            return published - count <= Self.devices
        }
        let count = try survivor.database.read { db in try db.value(as: Int.self, "SELECT COUNT(*) FROM healthSample") } ?? 0
        #expect(stored, "published \(published) reports, stored \(count): \(published - count) lost")
    }

    struct OnlineCount: Decodable { var devices: Int; var online: Int }
    struct SimulatorCount: Decodable { var reportsPublished: Int }
}
