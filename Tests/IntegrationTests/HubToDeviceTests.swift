import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// The real hub and the real runtime, as an operator runs them: `fleethub` packages
/// and deploys a process module, `fleethub serve` serves its bundle, and
/// `edge-runtime run` on the device downloads and starts it.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct HubToDeviceTests {
    @Test func fleethubDeployReachesARunningModule() async throws {
        let fleethub = Fixtures.builtExecutable("fleethub")
        #expect(FileManager.default.isExecutableFile(atPath: fleethub), "build the package first: swift build")
        let directory = try TemporaryDirectory(prefix: "hub-to-device")
        let workspace = directory.file("hub")
        let hub = { (arguments: [String]) throws -> String in
            try Fixtures.run(fleethub, arguments + ["--workspace", workspace])
        }
        let httpPort = try Fixtures.freePort()
        let broker = try await MosquittoBroker.start()
        defer { broker.kill() }
        _ = try hub(["init", "--insecure", "--broker", broker.url, "--public-url", "http://127.0.0.1:\(httpPort)"])
        let source = directory.file("agent")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try "echo agent up\nwhile true; do sleep 0.2; done\n".write(toFile: "\(source)/run.sh", atomically: true, encoding: .utf8)
        _ = try hub(["module", "package", "--name", "site-agent", "--kind", "process", "--command", "/bin/sh run.sh", "--source", source])
        let configPath = directory.file("gw-001.yaml")
        _ = try hub([
            "device", "add", "gw-001", "--tag", "site=test", "--out", configPath,
            "--local-api", "127.0.0.1:\(try Fixtures.freePort())",
        ])

        var config = try DeviceConfig.load(from: configPath)
        config.dataDir = directory.file("device")
        try config.save(to: configPath)

        let server = try ChildProcess(fleethub, ["serve", "--http", "127.0.0.1:\(httpPort)", "--workspace", workspace], outputPath: directory.file("hub.log"))
        defer { server.stop() }
        let runtime = try ChildProcess(
            Fixtures.builtExecutable("edge-runtime"), ["run", "--config", configPath, "--rollback-window", "0.5"],
            outputPath: directory.file("runtime.log"))
        defer { runtime.stop() }
        #expect(await eventually { Fixtures.isListening(port: httpPort) })

        let manifest = directory.file("site-agent.yaml")
        try """
            name: site-agent
            priority: 1
            target: "*"
            modules:
              - name: agent
                bundle: site-agent:1
                restartPolicy: always
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let deployed = ContinuousClock.now
        _ = try hub(["deploy", manifest])
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
    }
}
