import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

/// The processes behind a deployed scoring module, through the daemon: their output goes
/// through the module's rotating log, and a worker that dies while idle is replaced
/// before it is handed a request.
@Suite(
    .serialized,
    .enabled(if: Fixtures.shouldRun(needing: "mosquitto") && Fixtures.shouldRun(needing: "python3"), "needs mosquitto and python3"))
struct ScoringWorkerProcessTests {
    /// A scorer that writes `lines` lines of 100 characters to stdout and to stderr, then
    /// `marker` to stdout, and answers its pid.
    static let chattyScript = """
        import json, os, sys

        def init():
            pass

        def run(raw_data):
            request = json.loads(raw_data)
            for _ in range(request.get("lines", 0)):
                print("o" * 100)
                print("e" * 100, file=sys.stderr)
            print(request.get("marker", ""))
            return {"pid": os.getpid()}
        """

    static func start(_ device: DeviceFixture, settings: RuntimeSettings, workers: Int) async throws -> (Task<Void, any Error>, APIClient) {
        let daemon = Task {
            try await EdgeRuntimeDaemon(config: device.config, settings: settings, logger: Logger(label: "runtime")).run()
        }
        let bundle = try TestBundle.make(
            name: "chatty", files: ["score.py": Data(chattyScript.utf8)], command: nil, kind: .pythonScoring)
        try device.server.serve(bundle)
        let spec = ModuleSpec(
            name: "chatty", kind: .pythonScoring, bundle: bundle.reference(baseURL: device.server.baseURL), workers: workers)
        _ = try await device.publish(revision: 1, [spec])
        #expect(await eventually(timeout: .seconds(60)) {
            (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied)
        })
        return (daemon, APIClient(port: try #require(device.config.localAPI?.port)))
    }

    static func pid(in body: Data) -> Int32? {
        ((try? JSONSerialization.jsonObject(with: body)) as? [String: Int])?["pid"].map(Int32.init)
    }

    @Test func aWorkersOutputRotatesWithTheModuleLogAndGoesOnIntoTheCurrentFile() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        var settings = RuntimeIntegrationTests.settings
        settings.logFileBytes = 64 * 1024
        settings.logFilesKept = 2
        let (daemon, api) = try await Self.start(device, settings: settings, workers: 1)
        defer { daemon.cancel() }

        // About 200 KB of output, three times the size limit.
        #expect(try await api.post("/v1/modules/chatty/score", #"{"lines": 1000}"#).0 == 200)
        let marker = "after rotation \(UUID().uuidString)"
        #expect(try await api.post("/v1/modules/chatty/score", #"{"marker": "\#(marker)"}"#).0 == 200)

        let log = device.dataDirectory.log(of: "chatty")
        func text(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
        func size(_ url: URL) -> Int { (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0 }
        let rotated = [1, 2].map { URL(fileURLWithPath: "\(log.path).\($0)") }
        #expect(await eventually { text(log).contains(marker) }, "the current file has \(size(log)) bytes")
        #expect(rotated.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
        #expect(([log] + rotated).allSatisfy { size($0) <= 64 * 1024 }, "\(([log] + rotated).map(size))")
        #expect(!FileManager.default.fileExists(atPath: "\(log.path).3"))
        #expect(rotated.allSatisfy { !text($0).contains(marker) })
        #expect(text(rotated[0]).contains(String(repeating: "e", count: 100)))
        #expect(try Fixtures.run(
            KilledRuntimeTests.executable.path, ["logs", "chatty", "--tail", "1", "--config", Self.save(device)]) == marker + "\n")
        daemon.cancel()
        _ = await daemon.result
    }

    /// The device's config in a file, for the `edge-runtime` command line.
    static func save(_ device: DeviceFixture) throws -> String {
        let path = device.directory.file("gw-001.yaml")
        try device.config.save(to: path)
        return path
    }

    @Test func aWorkerKilledWhileIdleIsReplacedBeforeTheNextRequestReachesIt() async throws {
        let device = try await DeviceFixture()
        defer { device.stop() }
        let (daemon, api) = try await Self.start(device, settings: RuntimeIntegrationTests.settings, workers: 1)
        defer { daemon.cancel() }

        let (status, body) = try await api.post("/v1/modules/chatty/score", "{}")
        #expect(status == 200)
        let first = try #require(Self.pid(in: body))
        kill(first, SIGKILL)
        #expect(await eventually { !isAlive(first) })

        let (next, answer) = try await api.post("/v1/modules/chatty/score", "{}")
        #expect(next == 200, "\(String(decoding: answer, as: UTF8.self))")
        let second = try #require(Self.pid(in: answer))
        #expect(second != first)
        let (_, health) = try await api.get("/v1/modules/chatty/health")
        #expect(String(decoding: health, as: UTF8.self).contains(#""restarts":1"#))
        daemon.cancel()
        _ = await daemon.result
    }
}
