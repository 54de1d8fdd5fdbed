import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The hub pins a scoring module's requirements at packaging and the device installs
/// exactly those artifacts: real `fleethub`, `edge-runtime`, pip and a local package index.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct PinnedEnvironmentTests {
    @Test func aDeviceRefusesAnArtifactTheHubDidNotPinAndKeepsItsWorkingEnvironment() async throws {
        let fleet = try await HubAndDevice(prefix: "pinned-environment")
        defer { fleet.stop() }
        let directory = fleet.directory
        let index = try await PackageIndex()
        let served = try index.publish("tinypkg", version: "0.1", value: "1")
        try index.publish("helperpkg", version: "1.0", value: "2")
        try FileManager.default.createDirectory(atPath: directory.file("src"), withIntermediateDirectories: true)
        try "import tinypkg\n\ndef init():\n    pass\n\ndef run(raw_data):\n    return {\"value\": tinypkg.VALUE}\n"
            .write(toFile: directory.file("src/score.py"), atomically: true, encoding: .utf8)
        try "weights".write(toFile: directory.file("model.bin"), atomically: true, encoding: .utf8)
        try fleet.hub(["model", "register", "--name", "model", "--path", directory.file("model.bin")])
        // Version 2 needs one more package, so it gets an environment of its own.
        for requirements in ["tinypkg==0.1\n", "tinypkg==0.1\nhelperpkg==1.0\n"] {
            try "--index-url \(index.url)\n\(requirements)".write(toFile: directory.file("requirements.txt"), atomically: true, encoding: .utf8)
            try fleet.hub([
                "module", "package", "--name", "scorer", "--model", "model:1", "--entry", "score.py",
                "--source", directory.file("src"), "--requirements", directory.file("requirements.txt"),
            ])
        }
        let shownModule = try fleet.hub(["module", "show", "scorer:1"])
        #expect(shownModule.contains("tinypkg==0.1  sha256:\(ContentDigest(of: try Data(contentsOf: served)).hex)"), "\(shownModule)")
        let apiPort = try Fixtures.freePort()
        let config = try await fleet.startServeAndDevice(localAPIPort: apiPort)
        let dataDirectory = DataDirectory(config: config)
        func deploy(_ version: Int) throws {
            try """
                name: scorer
                priority: 1
                target: "*"
                modules:
                  - name: scorer
                    bundle: scorer:\(version)
                """.write(toFile: directory.file("scorer.yaml"), atomically: true, encoding: .utf8)
            try fleet.hub(["deploy", directory.file("scorer.yaml")])
        }
        func score() async throws -> String {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(apiPort)/v1/modules/scorer/score")!)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data("{}".utf8)
            return String(decoding: try await URLSession.shared.data(for: request).0, as: UTF8.self)
        }
        func log() -> String { (try? String(contentsOfFile: directory.file("runtime.log"), encoding: .utf8)) ?? "" }

        try deploy(1)
        let running = await eventually(timeout: .seconds(180)) {
            let status = try? StateStore(url: dataDirectory.database).status()
            return status?.desired.status == .applied && status?.modules.first?.status == .running
        }
        #expect(running, "runtime log: \(log())")
        let first = try await score()
        #expect(first.contains(#""value": 1"#), "\(first)")
        let revision = try StateStore(url: dataDirectory.database).status().acceptedRevision
        let environments = try FileManager.default.contentsOfDirectory(atPath: dataDirectory.environments.path)
        #expect(environments.count == 1)

        // Someone replaces the artifact on the index under the same name and version.
        try index.publish("tinypkg", version: "0.1", value: "666")
        try deploy(2)
        let failed = await eventually(timeout: .seconds(180)) {
            let status = try? StateStore(url: dataDirectory.database).status()
            return (status?.desired.revision ?? 0) > revision && status?.desired.status == .failed
        }
        #expect(failed, "runtime log: \(log())")
        let status = try StateStore(url: dataDirectory.database).status()
        let error = status.desired.error ?? ""
        // What the health report carries: its first 300 characters.
        #expect(error.prefix(300).contains("THESE PACKAGES DO NOT MATCH THE HASHES"), "\(error)")
        let shown = try Fixtures.run(Fixtures.builtExecutable("edge-runtime"), ["status", "--config", directory.file("gw-001.yaml")])
        #expect(shown.contains("DO NOT MATCH THE HASHES"), "\(shown)")
        // Version 1 still runs on its environment, untouched.
        #expect(status.modules.first?.status == .running)
        #expect(try await score() == first)
        #expect(FileManager.default.fileExists(atPath: dataDirectory.environments.appendingPathComponent("\(environments[0])/.ready").path))
    }
}
