import EdgeRuntime
import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Input drift through the real broker, hub and device: a scoring module registered with
/// its training data as `--baseline` and deployed with `telemetry.drift`; the device
/// summarises what it is asked to score, the hub computes PSI from the health reports.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto") && Fixtures.shouldRun(needing: "python3")))
struct InputDriftTests {
    static let python = ProcessInfo.processInfo.environment["FLEET_PYTHON"] ?? Fixtures.which("python3") ?? "python3"

    /// Draws the training data (5,000 rows of four normal features) into `train.csv` and two
    /// batches of 2,000 rows: `like.json` drawn the same way, `shifted.json` the same with
    /// `petal_length` moved by 2 standard deviations.
    static let drawing = """
        import json, sys, numpy as np
        folder = sys.argv[1]
        rng = np.random.default_rng(15)
        mean, std = np.array([5.8, 3.0, 3.8, 1.2]), np.array([0.8, 0.4, 1.8, 0.8])
        names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        train = rng.normal(mean, std, size=(5000, 4))
        np.savetxt(folder + "/train.csv", train, delimiter=",", header=",".join(names), comments="", fmt="%.6f")
        like = rng.normal(mean, std, size=(2000, 4))
        shifted = rng.normal(mean, std, size=(2000, 4))
        shifted[:, 2] += 2 * std[2]
        for name, rows in (("like", like), ("shifted", shifted)):
            with open(f"{folder}/{name}.json", "w") as out:
                json.dump({"data": np.round(rows, 6).tolist()}, out)
        """

    /// PSI per feature as numpy computes it, on bins made the documented way from
    /// `train.csv`: edges = min, deciles and max (numpy's linear quantiles), values binned by
    /// `searchsorted` with the maximum in the last inner bin, shares raised to 1e-4.
    static let numpyPSI = """
        import json, sys, numpy as np
        train = np.genfromtxt(sys.argv[1], delimiter=",", names=True)
        rows = np.array(json.load(open(sys.argv[2]))["data"])
        def bins(values, edges):
            index = np.searchsorted(edges, values, side="right")
            index[values == edges[-1]] = len(edges) - 1
            return np.bincount(index, minlength=len(edges) + 1)
        result = {}
        for column, name in enumerate(train.dtype.names):
            expected_values = train[name]
            edges = np.unique(np.quantile(expected_values, np.linspace(0, 1, 11)))
            e = np.maximum(bins(expected_values, edges) / len(expected_values), 1e-4)
            a = np.maximum(bins(rows[:, column], edges) / len(rows), 1e-4)
            result[name] = float(np.sum((a - e) * np.log(a / e)))
        print(json.dumps(result))
        """

    @Test func inputsLikeTheTrainingDataStayBelowPointOneAndAShiftedFeatureAloneDriftsAndAlerts() async throws {
        let fleet = try await HubAndDevice(prefix: "hub-drift")
        defer { fleet.stop() }
        let directory = fleet.directory
        try Fixtures.run(Self.python, ["-c", Self.drawing, directory.path])
        try "weights".write(toFile: directory.file("model.bin"), atomically: true, encoding: .utf8)
        #expect(try fleet.hub(["model", "register", "--name", "flowers", "--path", directory.file("model.bin"), "--baseline", directory.file("train.csv")]) == "flowers:1\n")
        let shown = try fleet.hub(["model", "show", "flowers:1"])
        #expect(shown.contains("baseline: 5000 rows") && shown.contains("feature petal_length  count 5000"), "\(shown)")
        let source = directory.file("scorer")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try "import json\n\ndef init():\n    pass\n\ndef run(raw_data):\n    return {'rows': len(json.loads(raw_data)['data'])}\n"
            .write(toFile: "\(source)/score.py", atomically: true, encoding: .utf8)
        _ = try fleet.hub(["module", "package", "--name", "flowers-scorer", "--model", "flowers:1", "--entry", "score.py", "--source", source])
        let apiPort = try Fixtures.freePort()
        let config = try await fleet.startServeAndDevice(localAPIPort: apiPort)
        let manifest = directory.file("flowers.yaml")
        try """
            name: flowers
            priority: 1
            target: "*"
            modules:
              - name: flowers
                bundle: flowers-scorer:1
                telemetry:
                  drift: {features: auto, windowSeconds: 2}
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        try fleet.hub(["deploy", manifest])
        let dataDirectory = DataDirectory(config: config)
        let running = await eventually(timeout: .seconds(60)) {
            let status = try? StateStore(url: dataDirectory.database).status()
            return status?.desired.status == .applied && status?.modules.first?.status == .running
        }
        try #require(running, "runtime log: \((try? String(contentsOfFile: directory.file("runtime.log"), encoding: .utf8)) ?? "")")

        func score(_ batch: String) async throws {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(apiPort)/v1/modules/flowers/score")!)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try Data(contentsOf: URL(fileURLWithPath: directory.file("\(batch).json")))
            let (data, response) = try await URLSession.shared.data(for: request)
            #expect((response as? HTTPURLResponse)?.statusCode == 200, "\(String(decoding: data, as: UTF8.self))")
        }
        /// The hub's PSI per feature once it holds a window newer than `after` of all 2,000 rows.
        func hubPSI(after: Date?) async throws -> (scores: [String: Double], windowEnd: Date) {
            var scores: [FeatureDrift] = []
            let scored = try await eventually(timeout: .seconds(30)) {
                let json = try fleet.hub(["device", "show", "gw-001", "--json"])
                scores = try FleetJSON.decode(DeviceDetail.self, from: Data(json.utf8)).health?.drift ?? []
                return scores.count == 4 && scores.allSatisfy { score in score.count == 2000 && after.map { score.windowEnd > $0 } ?? true }
            }
            try #require(scored, "hub scores: \(scores); serve log: \((try? String(contentsOfFile: directory.file("hub.log"), encoding: .utf8)) ?? "")")
            return (Dictionary(uniqueKeysWithValues: scores.map { ($0.feature, $0.psi) }), scores[0].windowEnd)
        }
        func numpy(_ batch: String) throws -> [String: Double] {
            let output = try Fixtures.run(Self.python, ["-c", Self.numpyPSI, directory.file("train.csv"), directory.file("\(batch).json")])
            return try JSONDecoder().decode([String: Double].self, from: Data(output.utf8))
        }

        try await score("like")
        let like = try await hubPSI(after: nil)
        let likeNumpy = try numpy("like")
        for (feature, psi) in like.scores {
            #expect(psi < 0.1, "\(feature): PSI \(psi)")
            #expect(abs(psi - (likeNumpy[feature] ?? .nan)) <= 1e-6, "\(feature): hub \(psi), numpy \(likeNumpy[feature] ?? .nan)")
        }
        #expect(!(try fleet.hub(["alerts"])).contains("input-drift"))

        try await score("shifted")
        let shifted = try await hubPSI(after: like.windowEnd)
        let shiftedNumpy = try numpy("shifted")
        for (feature, psi) in shifted.scores {
            if feature == "petal_length" {
                #expect(psi > 0.2, "\(feature): PSI \(psi)")
            } else {
                #expect(psi < 0.1, "\(feature): PSI \(psi)")
            }
            #expect(abs(psi - (shiftedNumpy[feature] ?? .nan)) <= 1e-6, "\(feature): hub \(psi), numpy \(shiftedNumpy[feature] ?? .nan)")
        }
        print("drift PSI, like the training data: \(like.scores.sorted { $0.key < $1.key }); shifted petal_length: \(shifted.scores.sorted { $0.key < $1.key })")
        let alerts = try fleet.hub(["alerts"])
        let drifted = alerts.split(separator: "\n").filter { $0.hasPrefix("input-drift") }
        #expect(drifted.count == 1 && drifted[0].contains("gw-001/flowers") && drifted[0].contains("petal_length"), "\(alerts)")
        #expect(!alerts.contains("sepal_length") && !alerts.contains("petal_width"), "\(alerts)")

        let device = try fleet.hub(["device", "show", "gw-001"])
        #expect(device.contains("drift: window") && device.contains("petal_length  PSI \(String(format: "%.4f", shifted.scores["petal_length"]!))"), "\(device)")
        let status = try fleet.hub(["deployment", "status", "flowers"])
        #expect(status.contains("DRIFT") && status.contains("petal_length \(String(format: "%.3f", shifted.scores["petal_length"]!))"), "\(status)")
        // The dashboard's device page, from `fleethub serve` over HTTPS with the viewer token.
        let token = try HTTPAccess.load(from: Workspace.open(at: URL(fileURLWithPath: fleet.workspace))).viewerToken
        let page = try Fixtures.run("/usr/bin/env", [
            "curl", "-sf", "--cacert", config.hub.caFile ?? "", "-u", "viewer:\(token)", "https://127.0.0.1:\(fleet.httpPort)/devices/gw-001",
        ])
        let petalPSI = String(format: "%.4f", shifted.scores["petal_length"]!)
        #expect(page.contains(#"<tr data-feature="flowers/petal_length"><td>flowers</td><td>petal_length</td><td class="offline">\#(petalPSI)</td><td>2000</td>"#), "\(page)")
        #expect(page.contains(#"<td>sepal_width</td><td>"#) && !page.contains(#"<td>sepal_width</td><td class="offline">"#))

        // The operator's own threshold: one above the shifted feature's PSI raises nothing.
        do {
            _ = try fleet.hub(["config", "set", "drift-alert-psi", "none"])
            Issue.record("config set accepted drift-alert-psi none")
        } catch FixtureError.commandFailed(_, _, let stderr) {
            #expect(stderr.contains("drift-alert-psi") && stderr.contains("none") && stderr.contains("above 0"), "\(stderr)")
        }
        _ = try fleet.hub(["config", "set", "drift-alert-psi", String(shifted.scores["petal_length"]! + 1)])
        #expect(try fleet.hub(["config", "show"]).contains("drift-alert-psi: "))
        #expect(!(try fleet.hub(["alerts"])).contains("input-drift"))
    }
}
