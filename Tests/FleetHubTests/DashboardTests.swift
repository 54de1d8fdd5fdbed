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
            let searched = try dom("/?q=00003")
            #expect(searched.components(separatedBy: "data-device=\"sim-").count == 2)
            #expect(searched.contains(#"data-device="sim-00003""#))
            // The crash-looping device is listed first, as a problem.
            let problems = try dom("/?status=problem")
            #expect(problems.components(separatedBy: "data-device=\"sim-").count == 2)
            #expect(problems.contains("module not running"))
            // The script shows the last report's time as "…s ago".
            #expect(overview.contains("s ago</time>"))

            let model = try dom("/models/iris")
            #expect(model.contains(#"data-running="2""#))
            #expect(model.contains(#"href="/modules/scorer#v1""#))

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

        }
    }

    /// `?live=1`: JSON with only the parts whose ETag the browser does not have, and 304
    /// when the page's ETag is unchanged.
    @Test func liveRefreshSendsOnlyChangedPartsOr304() async throws {
        try await withFedHub { _, base, token in
            func get(_ path: String, headers: [String: String] = [:]) async throws -> (Data, HTTPURLResponse) {
                var request = URLRequest(url: URL(string: "\(base)\(path)")!)
                request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
                let (data, response) = try await URLSession.shared.data(for: request)
                return (data, try #require(response as? HTTPURLResponse))
            }
            struct Update: Decodable {
                struct Part: Decodable { var etag: String, html: String }
                var etag: String
                var parts: [String: Part]
            }
            let (full, _) = try await get("/?live=1")
            let all = try JSONDecoder().decode(Update.self, from: full)
            #expect(Set(all.parts.keys) == ["overview-counts", "overview-alerts", "overview-deployments", "overview-devices"])
            let counts = try #require(all.parts["overview-counts"])
            #expect(counts.html.contains(#"<b class="online" id="count-online">5</b>"#))
            #expect(!counts.html.contains("<script"))

            // The browser holds every part: the counts (still 5 online) are not sent again.
            let have = all.parts.map { "\($0.key)=\($0.value.etag)" }.joined(separator: ", ")
            let (delta, _) = try await get("/?live=1", headers: ["X-Dashboard-Parts": have])
            let changed = try JSONDecoder().decode(Update.self, from: delta)
            #expect(changed.parts["overview-counts"] == nil)
            #expect(delta.count < full.count)

            // A page nothing changes on answers 304 to its own ETag.
            let (_, first) = try await get("/modules/scorer?live=1")
            let etag = try #require(first.value(forHTTPHeaderField: "ETag"))
            let (body, unchanged) = try await get("/modules/scorer?live=1", headers: ["If-None-Match": etag])
            #expect(unchanged.statusCode == 304)
            #expect(body.isEmpty)
            let (_, stale) = try await get("/modules/scorer?live=1", headers: ["If-None-Match": "\"0000\""])
            #expect(stale.statusCode == 200)
        }
    }

    /// The studio: models, modules and deployments, linked to each other and to the
    /// devices running them, behind the same viewer token.
    @Test func studioPagesLinkModelsModulesDeploymentsAndDevices() async throws {
        try await withFedHub { hub, base, token in
            func page(_ path: String, token: String) async throws -> (String, Int) {
                var request = URLRequest(url: URL(string: "\(base)\(path)")!)
                request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                let (data, response) = try await URLSession.shared.data(for: request)
                return (String(decoding: data, as: UTF8.self), (response as? HTTPURLResponse)?.statusCode ?? 0)
            }
            let scorer = try hub.modules.show(VersionedName(name: "scorer", version: 1))

            let (models, _) = try await page("/models", token: token)
            #expect(models.contains(#"<a href="/models/iris">iris</a>"#))
            let (model, _) = try await page("/models/iris", token: token)
            #expect(model.contains(#"data-version="iris:1""#))
            #expect(model.contains("<td>onnx</td>"))
            #expect(model.contains(#"<a class="pill" href="/modules/scorer#v1">scorer:1</a>"#))
            // sim-00001 and sim-00002 run it; sim-00000's module crash-loops.
            #expect(model.contains(#"data-running="2""#))
            #expect(model.contains(#"href="/devices/sim-00001""#))
            #expect(!model.contains(#"href="/devices/sim-00000""#))

            let (modules, _) = try await page("/modules", token: token)
            #expect(modules.contains(#"<a href="/modules/scorer">scorer</a>"#))
            let (module, _) = try await page("/modules/scorer", token: token)
            #expect(module.contains(scorer.digest.description))
            #expect(module.contains(#"<a class="pill" href="/models/iris">iris:1</a>"#))
            #expect(module.contains(#"<a class="pill" href="/deployments/prod">prod (version 1)</a>"#))
            #expect(module.contains(#"data-running="2""#))

            try hub.deploy("name: prod\npriority: 2\ntarget: site=plant-1\nmodules:\n  - name: scorer\n    bundle: scorer:1\n")
            let (deployments, _) = try await page("/deployments", token: token)
            #expect(deployments.contains(#"<a href="/deployments/prod">prod</a></td><td>2</td>"#))
            let (deployment, _) = try await page("/deployments/prod", token: token)
            #expect(deployment.contains(#"<a class="pill" href="/modules/scorer">"#))
            #expect(deployment.contains(#"<tr data-version="2"><td>2 (current)</td>"#))
            #expect(deployment.contains(#"<tr data-version="1"><td>1</td>"#))
            #expect(deployment.contains("priority: 2\ntarget: site=plant-1"))
            #expect(deployment.contains("priority: 1\ntarget: site=plant-1"))

            // The same login as the rest of the dashboard; curl, since URLSession on Linux
            // waits forever on a Basic challenge it has no credentials for.
            let scratch = try TemporaryDirectory(prefix: "studio-login")
            for (index, path) in ["/models", "/models/iris", "/modules/scorer", "/deployments", "/deployments/prod"].enumerated() {
                let curl = try ChildProcess(
                    "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "\(base)\(path)"], outputPath: scratch.file("status-\(index)"))
                #expect(try await curl.waitForExit() == 0)
                #expect(try String(contentsOfFile: scratch.file("status-\(index)"), encoding: .utf8) == "401", "\(path) without the viewer token")
            }
            #expect(try await page("/models/ghost", token: token).1 == 404)
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
