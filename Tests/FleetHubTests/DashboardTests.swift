import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Logging
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The dashboard, `/metrics` and the health commands against a hub fed by the real
/// `fleet-simulator` over a real mosquitto; the dashboard is rendered by headless Chromium.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct DashboardTests {
    /// A hub with five simulated devices reporting every second (the first one's module
    /// crash-loops), a deployment to them, and `fleethub serve`'s HTTP side and ingestion.
    /// `body` gets the hub, its base URL and the viewer token the dashboard needs.
    func withFedHub(_ body: (HubFixture, String, String) async throws -> Void) async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let hub = try HubFixture(broker: broker.url)
        try hub.packagedScorer(module: "scorer")
        for index in 0..<5 {
            _ = try hub.devices.add(id: String(format: "sim-%05d", index), tags: ["site": index < 3 ? "plant-1" : "plant-2"])
        }
        try hub.deploy("name: prod\npriority: 1\ntarget: site=plant-1\nmodules:\n  - name: scorer\n    bundle: scorer:1\n")
        try await DesiredStatePublisher(workspace: hub.workspace).publishPending()

        let ingestion = HealthFixture.quietIngestion(hub.workspace)
        let ingesting = try await HealthFixture.startIngestion(ingestion)
        defer { ingesting.cancel() }
        var logger = Logger(label: "fleethub.http.test")
        logger.logLevel = .critical
        let server = HubServer(workspace: hub.workspace, port: 0, ingestion: ingestion, logger: logger)
        let ready = AsyncStream<Int>.makeStream()
        let serving = Task { try await server.run { ready.continuation.yield($0) } }
        defer { serving.cancel() }
        var iterator = ready.stream.makeAsyncIterator()
        let port = try #require(await iterator.next())

        let simulator = try ChildProcess(Fixtures.builtExecutable("fleet-simulator"), [
            "--broker", broker.url, "--devices", "5", "--interval", "1", "--duration", "60", "--change-after", "0.5",
        ])
        defer { simulator.stop() }
        let health = FleetHealth(workspace: hub.workspace)
        #expect(try await eventually(timeout: .seconds(20)) {
            let overview = try health.overview()
            let reported = try health.devices().allSatisfy { $0.modulesTotal == 1 }
            return overview.online == 5 && reported && overview.alerts.contains { $0.kind == .restartLoop }
                && overview.rollouts.first?.count(.applied) == 2
        })
        try await body(hub, "http://127.0.0.1:\(port)", try HTTPAccess.load(from: hub.workspace).viewerToken)
    }

    @Test(.enabled(if: Fixtures.shouldRun(needing: "chromium")))
    func chromiumRendersTheOverviewDevicePageAndDeploymentPage() async throws {
        let browser = try #require(Fixtures.which("chromium"), "install Debian's chromium (scripts/setup)")
        try await withFedHub { hub, base, _ in
            // Headless Chromium does not answer a Basic challenge with the credentials of
            // a user:token@ address, so this hub opens reads as
            // `fleethub access public-reads true` does (the token checks have their own tests).
            var access = try HTTPAccess.load(from: hub.workspace)
            access.publicReads = true
            try access.save(in: hub.workspace)
            func dom(_ path: String) throws -> String {
                try Fixtures.run(browser, [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=8000",
                    "--dump-dom", "\(base)\(path)",
                ])
            }
            let overview = try dom("/")
            #expect(overview.contains(#"<b class="online" id="count-online">5</b>"#))
            #expect(overview.contains(#"<b id="count-devices">5</b>"#))
            #expect(overview.components(separatedBy: "data-device=\"sim-").count == 6)
            #expect(overview.contains(#"data-kind="restart-loop""#))
            #expect(overview.contains(#"<a href="/deployments/prod">prod</a>"#))
            // The page refreshed itself from `?fragment=1` at least once.
            #expect(overview.contains(#"id="live">live · updated"#))

            let filtered = try dom("/?tag=site%3Dplant-2&status=online")
            #expect(filtered.components(separatedBy: "data-device=\"sim-").count == 3)

            let device = try dom("/devices/sim-00000")
            #expect(device.contains("simulated crash"))
            #expect(device.contains("<polyline"))
            #expect(device.contains("backoff"))

            let deployment = try dom("/deployments/prod")
            #expect(deployment.contains("<td>sim-00000</td>") || deployment.contains(">sim-00000</a>"))
            #expect(deployment.contains("module-not-running"))
        }
    }

    @Test func metricsJSONAndLiveFragment() async throws {
        try await withFedHub { _, base, token in
            func get(_ path: String) async throws -> (Data, URLResponse) {
                var request = URLRequest(url: URL(string: "\(base)\(path)")!)
                request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                return try await URLSession.shared.data(for: request)
            }
            let (metrics, response) = try await get("/metrics")
            #expect(response.mimeType == "text/plain")
            let text = String(decoding: metrics, as: UTF8.self)
            #expect(text.contains("fleethub_devices_online 5\n"))
            #expect(text.contains(#"fleethub_deployment_devices{deployment="prod",state="applied"} 2"#))
            #expect(text.contains(#"fleethub_deployment_devices{deployment="prod",state="module-not-running"} 1"#))
            #expect(text.contains("fleethub_reports_ingested_total "))
            #expect(text.contains("fleethub_report_ingest_rate "))

            let (overviewJSON, _) = try await get("/v1/health/overview")
            let overview = try FleetJSON.decode(FleetOverview.self, from: overviewJSON)
            #expect(overview.online == 5)
            #expect(overview.rollouts.map(\.deployment) == ["prod"])
            let (deviceJSON, _) = try await get("/v1/health/devices/sim-00001")
            let device = try FleetJSON.decode(DeviceHealthDetail.self, from: deviceJSON)
            #expect(device.report?.deviceId == "sim-00001")
            #expect(!device.history.isEmpty)
            let (_, missing) = try await get("/v1/health/devices/ghost")
            #expect((missing as? HTTPURLResponse)?.statusCode == 404)

            let (fragment, _) = try await get("/?fragment=1")
            let html = String(decoding: fragment, as: UTF8.self)
            #expect(html.hasPrefix("<h1>Fleet overview</h1>"))
            #expect(!html.contains("<script"))
        }
    }

    @Test func healthCommandsPrintJSON() async throws {
        try await withFedHub { hub, _, _ in
            func fleethub(_ arguments: String...) throws -> Data {
                Data(try Fixtures.run(Fixtures.builtExecutable("fleethub"), arguments + ["--workspace", hub.workspace.root.path]).utf8)
            }
            let devices = try FleetJSON.decode([DeviceHealthSummary].self, from: fleethub("devices", "--json"))
            #expect(devices.map(\.id) == (0..<5).map { String(format: "sim-%05d", $0) })
            #expect(devices.map(\.connectivity) == Array(repeating: .online, count: 5))
            #expect(devices.map(\.modulesTotal) == Array(repeating: 1, count: 5))
            #expect(devices[1].reportedRevision == devices[1].desiredRevision)

            let rollout = try FleetJSON.decode(DeploymentRollout.self, from: fleethub("deployment", "status", "prod", "--json"))
            #expect(rollout.targeted == 3)
            #expect(rollout.count(.applied) == 2)
            #expect(rollout.count(.moduleNotRunning) == 1)

            struct Alerts: Decodable { var alerts: [HealthAlert] }
            let alerts = try FleetJSON.decode(Alerts.self, from: fleethub("alerts", "--json")).alerts
            #expect(alerts.map(\.subject) == ["sim-00000/scorer"])

            let detail = try FleetJSON.decode(DeviceDetail.self, from: fleethub("device", "show", "sim-00000", "--json"))
            #expect(detail.health?.report?.modules.first?.restarts == 99)
        }
    }
}
