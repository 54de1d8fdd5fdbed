import EdgeRuntime
import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The real hub and the real runtime, as an operator runs them: `fleethub` packages
/// and deploys a process module, `fleethub serve` serves its bundle over HTTPS with a
/// certificate from the hub's CA, and `edge-runtime run` on the device downloads
/// (trusting only that CA) and starts it.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct HubToDeviceTests {
    @Test func fleethubDeployReachesARunningModule() async throws {
        let fleet = try await HubAndDevice(prefix: "hub-to-device")
        defer { fleet.stop() }
        let directory = fleet.directory
        try fleet.packageAgent("echo agent up\nwhile true; do sleep 0.2; done\n")
        let config = try await fleet.startServeAndDevice(localAPIPort: try Fixtures.freePort())

        let deployed = ContinuousClock.now
        try fleet.deployAgent(moduleSettings: ["restartPolicy: always"])
        let dataDirectory = DataDirectory(config: config)
        let running = await eventually {
            let status = try? StateStore(url: dataDirectory.database).status()
            return status?.desired.status == .applied && status?.modules.first?.status == .running
        }
        #expect(running, "runtime log: \((try? String(contentsOfFile: directory.file("runtime.log"), encoding: .utf8)) ?? "")")
        print("fleethub deploy → module running (bundle not cached, 0.5 s rollback window): \(ContinuousClock.now - deployed)")
        #expect(await eventually {
            (try? ModuleLogReader(dataDirectory: dataDirectory, module: "agent").tail(1)) == ["agent up"]
        })
        #expect(config.hub.bundleBaseURL.hasPrefix("https://"), "\(config.hub.bundleBaseURL)")
        #expect(config.hub.caFile == directory.file("hub-ca.crt"))
    }

    /// A device whose config trusts another CA than the one that issued the hub's
    /// certificate (a look-alike hub) downloads nothing and says why.
    @Test func aDeviceTrustingAnotherCARefusesTheHubsCertificate() async throws {
        let fleet = try await HubAndDevice(prefix: "hub-to-device-other-ca")
        defer { fleet.stop() }
        let directory = fleet.directory
        try fleet.packageAgent("while true; do sleep 0.2; done\n")
        let other = directory.file("other-hub")
        _ = try Fixtures.run(Fixtures.builtExecutable("fleethub"), ["init", "--workspace", other])
        let config = try await fleet.startServeAndDevice(localAPIPort: try Fixtures.freePort()) { $0.hub.caFile = "\(other)/ca/ca.crt" }
        try fleet.deployAgent()

        let dataDirectory = DataDirectory(config: config)
        let failed = await eventually { (try? StateStore(url: dataDirectory.database).status())?.desired.status == .failed }
        let error = (try? StateStore(url: dataDirectory.database).status())?.desired.error ?? ""
        #expect(failed, "runtime log: \((try? String(contentsOfFile: directory.file("runtime.log"), encoding: .utf8)) ?? "")")
        #expect(error.contains("refusing to download https://127.0.0.1:\(fleet.httpPort)/v1/bundles/sha256:"), "\(error)")
        #expect(error.contains("CERTIFICATE_VERIFY_FAILED"), "\(error)")
    }

    /// `fleethub device logs` asks the device over MQTT and prints what the module logged
    /// there; a module the device does not run is named with the ones it does, and a
    /// device that is gone fails within the timeout, saying so.
    @Test func fleethubDeviceLogsShowsTheLastLinesTheModuleLoggedOnTheDevice() async throws {
        let fleet = try await HubAndDevice(prefix: "hub-to-device-logs")
        defer { fleet.stop() }
        try fleet.packageAgent("for i in 1 2 3 4 5; do echo \"agent line $i\"; done\nwhile true; do sleep 0.2; done\n")
        let config = try await fleet.startServeAndDevice(localAPIPort: try Fixtures.freePort())
        try fleet.deployAgent()
        let dataDirectory = DataDirectory(config: config)
        #expect(await eventually {
            (try? ModuleLogReader(dataDirectory: dataDirectory, module: "agent").tail(1)) == ["agent line 5"]
        }, "runtime log: \((try? String(contentsOfFile: fleet.directory.file("runtime.log"), encoding: .utf8)) ?? "")")

        let logs = try fleet.hub(["device", "logs", "gw-001", "agent", "--tail", "2"])
        #expect(logs == "agent line 4\nagent line 5\n")
        let json = try FleetJSON.decode(
            ModuleLogReply.self, from: Data(try fleet.hub(["device", "logs", "gw-001", "agent", "--json"]).utf8))
        #expect(json.lines == (1...5).map { "agent line \($0)" } && !json.truncated)

        #expect {
            try fleet.hub(["device", "logs", "gw-001", "scorer"])
        } throws: { error in
            "\(error)".contains("device gw-001 cannot send the log of scorer: module scorer has no log on this device; it runs agent")
        }

        fleet.stopDevice()
        let asked = ContinuousClock.now
        #expect {
            try fleet.hub(["device", "logs", "gw-001", "agent", "--timeout", "2"])
        } throws: { error in
            "\(error)".contains("device gw-001 did not answer within 2 s")
        }
        #expect(ContinuousClock.now - asked < .seconds(8))
    }

    /// While the device applies a deployment, `fleethub deployment status` shows the step
    /// it reported (here the rollback window's check, which lasts 6 s), not only `pending`.
    @Test func deploymentStatusShowsTheDevicesStepWhileItApplies() async throws {
        let fleet = try await HubAndDevice(prefix: "hub-device-progress")
        defer { fleet.stop() }
        try fleet.packageAgent("while true; do sleep 0.2; done\n")
        _ = try await fleet.startServeAndDevice(localAPIPort: try Fixtures.freePort(), rollbackWindow: 6)
        try fleet.deployAgent()

        var text = ""
        let shown = await eventually(timeout: .seconds(20)) {
            text = (try? fleet.hub(["deployment", "status", "site-agent"])) ?? ""
            return text.split(separator: "\n").contains { $0.hasPrefix("gw-001") && $0.contains("pending") && $0.contains("checking that agent stays up") }
        }
        #expect(shown, "\(text)")
        #expect(text.contains("STEP"), "\(text)")
        let json = try fleet.hub(["deployment", "status", "site-agent", "--json"])
        let progress = try FleetJSON.decode(DeploymentRollout.self, from: Data(json.utf8)).devices.first?.progress
        #expect(progress?.step == "checking that agent stays up", "\(json)")
        #expect(await eventually(timeout: .seconds(20)) {
            let rollout = try? FleetJSON.decode(DeploymentRollout.self, from: Data(((try? fleet.hub(["deployment", "status", "site-agent", "--json"])) ?? "").utf8))
            return rollout?.count(.applied) == 1 && rollout?.devices.first?.progress == nil
        })
    }

    /// An MLflow scikit-learn model registered and deployed with no `score.py`: the device
    /// builds its environment from the model's own requirements and serves it with
    /// `mlflow.pyfunc`, and predicts what `mlflow.pyfunc.load_model` predicts here.
    @Test(.enabled(if: Self.hasMLflow, "needs mlflow and scikit-learn in the test Python (scripts/setup)"))
    func anMLflowModelDeployedWithoutAScriptPredictsWhatPyfuncPredicts() async throws {
        let fleet = try await HubAndDevice(prefix: "hub-to-device-mlflow")
        defer { fleet.stop() }
        let directory = fleet.directory
        let hub = fleet.hub
        let rows = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]
        let rowsJSON = String(decoding: try JSONSerialization.data(withJSONObject: rows), as: UTF8.self)
        let folder = directory.file("iris-mlflow")
        let expected = try Fixtures.run(Self.python, [
            "-c",
            """
            import json, sys, mlflow.pyfunc, mlflow.sklearn, numpy as np
            from mlflow.models import infer_signature
            from sklearn.datasets import load_iris
            from sklearn.linear_model import LogisticRegression
            features, labels = load_iris(return_X_y=True)
            model = LogisticRegression(max_iter=1000).fit(features, labels)
            mlflow.sklearn.save_model(model, sys.argv[1], signature=infer_signature(features, model.predict(features)))
            print(json.dumps(mlflow.pyfunc.load_model(sys.argv[1]).predict(np.array(json.loads(sys.argv[2]))).tolist()))
            """,
            folder, rowsJSON,
        ]).split(separator: "\n").last.map(String.init) ?? ""
        let predictions = try #require(try JSONSerialization.jsonObject(with: Data(expected.utf8)) as? [Int])

        let apiPort = try Fixtures.freePort()
        #expect(try hub(["model", "register", "--name", "iris-mlflow", "--path", folder]).contains("iris-mlflow:1"))
        let shown = try hub(["model", "show", "iris-mlflow:1"])
        #expect(shown.contains("flavour: mlflow"), "\(shown)")
        #expect(shown.contains("input   input-0 FP64 [-1, 4]"), "\(shown)")
        #expect(shown.contains("output  output-0 INT64 [-1]"), "\(shown)")
        _ = try hub(["module", "package", "--name", "iris-mlflow", "--model", "iris-mlflow:1"])
        #expect(try hub(["module", "show", "iris-mlflow:1"]).contains("kind: mlflow"))
        let config = try await fleet.startServeAndDevice(localAPIPort: apiPort)
        let manifest = directory.file("iris-mlflow.yaml")
        try """
            name: iris-mlflow
            priority: 1
            target: "*"
            modules:
              - name: iris
                bundle: iris-mlflow:1
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        _ = try hub(["deploy", manifest])
        let dataDirectory = DataDirectory(config: config)
        // The device installs MLflow, pandas and scikit-learn into the module's venv first.
        let running = await eventually(timeout: .seconds(420)) {
            let status = try? StateStore(url: dataDirectory.database).status()
            return status?.desired.status == .applied && status?.modules.first?.status == .running
        }
        #expect(running, "runtime log: \((try? String(contentsOfFile: directory.file("runtime.log"), encoding: .utf8)) ?? "")")
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(apiPort)/v1/modules/iris/score")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: ["data": rows])
        let (data, _) = try await URLSession.shared.data(for: request)
        let answer = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(answer?["predictions"] as? [Int] == predictions, "\(String(decoding: data, as: UTF8.self))")
    }

    /// Two `fleethub serve` instances over one workspace and one SeaweedFS blob bucket, the
    /// device told both (`bundle-urls`): the first is killed with SIGKILL before the
    /// deployment, and the device downloads the bundle from the second and runs it.
    @Test(.enabled(if: SeaweedFS.shouldRun))
    func aDeviceGetsItsBundleFromTheSecondInstanceWhenTheFirstIsKilled() async throws {
        let seaweed = try await SeaweedFS.start()
        defer { seaweed.stop() }
        try await seaweed.createBucket("fleet-blobs")
        let credentials = try TemporaryDirectory(prefix: "hub-s3")
        try seaweed.writeCredentialsFile(to: credentials.file("s3.ini"))
        let fleet = try await HubAndDevice(
            prefix: "hub-to-device-two-instances",
            initArguments: [
                "--blobs", "s3://fleet-blobs/hub", "--blobs-endpoint", seaweed.endpoint, "--blobs-credentials", credentials.file("s3.ini"),
            ])
        defer { fleet.stop() }
        try fleet.packageAgent("echo agent up\nwhile true; do sleep 0.2; done\n")
        let bundles = try seaweed.sizes(bucket: "fleet-blobs", prefix: "hub/sha256/")
        #expect(bundles.count == 1, "\(bundles)")

        let firstPort = try Fixtures.freePort()
        try fleet.hub(["config", "set", "bundle-urls", "https://127.0.0.1:\(firstPort),https://127.0.0.1:\(fleet.httpPort)"])
        let first = try fleet.startServe(port: firstPort)
        let config = try await fleet.startServeAndDevice(localAPIPort: try Fixtures.freePort())
        #expect(await eventually { Fixtures.isListening(port: firstPort) })
        first.signal(SIGKILL)
        #expect(try await first.waitForExit() == SIGKILL)
        // This host's copy goes: the bundle can only come from the bucket.
        try FileManager.default.removeItem(atPath: "\(fleet.workspace)/blobs/sha256")

        try fleet.deployAgent()
        let dataDirectory = DataDirectory(config: config)
        let running = await eventually {
            let status = try? StateStore(url: dataDirectory.database).status()
            return status?.desired.status == .applied && status?.modules.first?.status == .running
        }
        #expect(running, "runtime log: \((try? String(contentsOfFile: fleet.directory.file("runtime.log"), encoding: .utf8)) ?? "")")
        #expect(await eventually {
            (try? ModuleLogReader(dataDirectory: dataDirectory, module: "agent").tail(1)) == ["agent up"]
        })
        let state = try DeviceRegistry(workspace: Workspace.open(at: URL(fileURLWithPath: fleet.workspace))).desiredState(id: "gw-001")
        let bundle = try #require(state?.modules.first?.bundle)
        #expect(bundle.downloadURLs == [firstPort, fleet.httpPort].map { "https://127.0.0.1:\($0)/v1/bundles/\(bundle.digest)" })
    }

    static let python = ProcessInfo.processInfo.environment["FLEET_PYTHON"] ?? Fixtures.which("python3") ?? "python3"

    static let hasMLflow: Bool = {
        Fixtures.isCI || (try? Fixtures.run(python, ["-c", "import mlflow.sklearn, sklearn"])) != nil
    }()
}

/// A hub workspace on a real broker, then `fleethub serve` and `edge-runtime run` for
/// one device, `gw-001` (tag `site=test`), as the tests above drive them.
final class HubAndDevice: Sendable {
    let directory: TemporaryDirectory
    let workspace: String
    let httpPort: Int
    private let broker: MosquittoBroker
    private let processes = Mutex<[ChildProcess]>([])
    private let runtime = Mutex<ChildProcess?>(nil)
    private static let fleethub = Fixtures.builtExecutable("fleethub")

    /// `initArguments` go to `fleethub init` (`--blobs s3://…`).
    init(prefix: String, initArguments: [String] = []) async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.fleethub), "build the package first: swift build")
        directory = try TemporaryDirectory(prefix: prefix)
        workspace = directory.file("hub")
        httpPort = try Fixtures.freePort()
        broker = try await MosquittoBroker.start()
        _ = try hub(["init", "--insecure", "--broker", broker.url, "--public-url", "https://127.0.0.1:\(httpPort)"] + initArguments)
    }

    /// Runs `fleethub ARGUMENTS` on the workspace.
    @discardableResult
    func hub(_ arguments: [String]) throws -> String {
        try Fixtures.run(Self.fleethub, arguments + ["--workspace", workspace])
    }

    /// Adds the device with its local API on `localAPIPort` and its data dir in the test
    /// folder (and `change` applied), starts `serve` and the runtime (updated modules must
    /// stay up for `rollbackWindow` seconds), and returns the device's config.
    func startServeAndDevice(
        localAPIPort: Int, rollbackWindow: Double = 0.5, change: (inout DeviceConfig) -> Void = { _ in }
    ) async throws -> DeviceConfig {
        let configPath = directory.file("gw-001.yaml")
        try hub(["device", "add", "gw-001", "--tag", "site=test", "--out", configPath, "--local-api", "127.0.0.1:\(localAPIPort)"])
        var config = try DeviceConfig.load(from: configPath)
        config.dataDir = directory.file("device")
        change(&config)
        try config.save(to: configPath)
        try startServe(port: httpPort)
        let runtime = try ChildProcess(
            Fixtures.builtExecutable("edge-runtime"), ["run", "--config", configPath, "--rollback-window", "\(rollbackWindow)"],
            outputPath: directory.file("runtime.log"))
        self.runtime.withLock { $0 = runtime }
        #expect(await eventually { Fixtures.isListening(port: self.httpPort) })
        return config
    }

    /// Starts one more `fleethub serve` instance on the workspace, listening on `port`
    /// (logging to `hub-PORT.log`, the first one's to `hub.log`); `stop()` stops it.
    @discardableResult
    func startServe(port: Int) throws -> ChildProcess {
        let log = port == httpPort ? "hub.log" : "hub-\(port).log"
        let server = try ChildProcess(
            Self.fleethub, ["serve", "--http", "127.0.0.1:\(port)", "--workspace", workspace], outputPath: directory.file(log))
        processes.withLock { $0.append(server) }
        return server
    }

    /// Packages `script` as the process module `site-agent` (`/bin/sh run.sh`).
    func packageAgent(_ script: String) throws {
        let source = directory.file("agent")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try script.write(toFile: "\(source)/run.sh", atomically: true, encoding: .utf8)
        try hub(["module", "package", "--name", "site-agent", "--kind", "process", "--command", "/bin/sh run.sh", "--source", source])
    }

    /// Deploys `site-agent:1` to every device as module `agent`, with `moduleSettings`
    /// (manifest lines such as `restartPolicy: always`) added to the module.
    func deployAgent(moduleSettings: [String] = []) throws {
        let manifest = directory.file("site-agent.yaml")
        let lines = ["name: site-agent", "priority: 1", "target: \"*\"", "modules:", "  - name: agent", "    bundle: site-agent:1"]
            + moduleSettings.map { "    \($0)" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        try hub(["deploy", manifest])
    }

    /// Stops `edge-runtime run`, as a device that goes away.
    func stopDevice() {
        runtime.withLock { $0 }?.stop()
    }

    func stop() {
        runtime.withLock { $0 }?.stop()
        for process in processes.withLock({ $0 }).reversed() { process.stop() }
        broker.kill()
    }
}
