@testable import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Each Azure ML scoring style, served side by side by the real `azmlinfsrv` and by this
/// runtime's scoring host and local API, on the same script and model: every request must
/// get the same status, the same JSON (for an error, azmlinfsrv's `message`; ours adds
/// `error`, `module` and `type`), and the same request id headers.
@Suite(
    .serialized,
    .enabled(
        if: AzureMLFixtures.shouldRun,
        "needs azmlinfsrv, inference-schema, azureml-core and scikit-learn in the test Python (scripts/setup)"))
struct AzureMLCompatibilityTests {
    @Test(arguments: AzureMLFixtures.Style.allCases)
    func answersEveryRequestAsAzmlinfsrvDoes(_ style: AzureMLFixtures.Style) async throws {
        let directory = try TemporaryDirectory()
        let azureML = try await Self.startAzmlinfsrv(style, in: directory)
        defer { azureML.process.stop() }
        let module = try AzureMLFixtures.module(style, in: directory.url)
        let configuration = ScoringConfiguration(
            module: style.rawValue, moduleDirectory: module, entry: "score.py", models: [style.model],
            python: InferenceFixtures.python, requestTimeout: .seconds(30), startTimeout: .seconds(90))
        try await Self.withAPI(configuration) { port in
            for request in style.requests {
                let theirs = try await Answer(request, to: "http://127.0.0.1:\(azureML.port)/score")
                let ours = try await Answer(request, to: "http://127.0.0.1:\(port)/v1/modules/\(style.rawValue)/score")
                let context = Comment(rawValue: "\(style) — \(request): azmlinfsrv answered \(theirs), we answered \(ours)")
                if let deviation = request.deviation {
                    #expect(ours.status == deviation.ours && theirs.status == deviation.theirs, context)
                } else {
                    #expect(ours.status == theirs.status, context)
                    #expect(ours.matches(theirs), context)
                }
                #expect(ours.sameRequestIDs(as: theirs), context)
            }
        }
    }

    @Test func azureMLsModelFoldersAreLaidOutForOneModel() async throws {
        let directory = try TemporaryDirectory()
        let module = try AzureMLFixtures.module(.sdkV1, in: directory.url)
        let configuration = ScoringConfiguration(
            module: "sdk", moduleDirectory: module, entry: "score.py", models: [ScoringModel(name: "iris-sdk-v1", version: 3)])
        try configuration.layOutAzureMLModels()
        #expect(configuration.azureMLModelDirectory.path == module.appending(path: "azureml-models/iris-sdk-v1/3").path)
        #expect(FileManager.default.fileExists(atPath: module.appending(path: "azureml-models/iris-sdk-v1/3/iris.pkl").path))
        // Laying out again (a restart) keeps the link.
        try configuration.layOutAzureMLModels()
        let several = ScoringConfiguration(
            module: "sdk", moduleDirectory: module, entry: "score.py",
            models: [ScoringModel(name: "a", version: 1), ScoringModel(name: "b", version: 2)])
        #expect(several.azureMLModelDirectory.path == module.appending(path: "azureml-models").path)
        let none = ScoringConfiguration(module: "sdk", moduleDirectory: module, entry: "score.py")
        #expect(none.azureMLModelDirectory.path == module.appending(path: "model").path)
    }

    @Test func theModelsModuleJSONRecordsReachTheScoringProgramOncePerVersion() throws {
        let digest = ContentDigest(of: Data("iris".utf8))
        let manifest = ModuleManifest(
            name: "iris-scorer", version: 1, kind: .pythonScoring, entry: "score.py",
            models: [
                ModelFileEntry(name: "iris", version: 3, path: "model/iris.pkl", sha256: String(repeating: "0", count: 64)),
                ModelFileEntry(name: "iris", version: 3, path: "model/labels.json", sha256: String(repeating: "1", count: 64)),
            ],
            files: [], requirements: [], createdAt: Date())
        let spec = ModuleSpec(
            name: "iris", kind: .pythonScoring, bundle: BundleReference(digest: digest, size: 1, url: "http://127.0.0.1/b"))
        let launch = try ModuleLaunch(spec: spec, manifest: manifest, folder: URL(fileURLWithPath: "/tmp/iris"), python: "python3")
        #expect(launch.scoring?.models == [ScoringModel(name: "iris", version: 3)])
    }

    // MARK: - Harness

    /// `azmlinfsrv` serving `style` from an Azure ML style app folder, once its `init()` returned.
    static func startAzmlinfsrv(_ style: AzureMLFixtures.Style, in directory: TemporaryDirectory) async throws
        -> (process: ChildProcess, port: Int)
    {
        let app = try AzureMLFixtures.azureMLApp(style, in: directory.url)
        let port = try Fixtures.freePort()
        var environment = ProcessInfo.processInfo.environment
        environment["AML_APP_ROOT"] = app.path
        environment["AZUREML_MODEL_DIR"] = app.appending(path: "azureml-models/\(style.model.name)/\(style.model.version)").path
        let log = directory.file("azmlinfsrv-\(style.rawValue).log")
        let process = try ChildProcess(
            AzureMLFixtures.azmlinfsrv, ["--entry_script", app.appending(path: "score.py").path, "--port", String(port)],
            environment: environment, outputPath: log)
        // GET / answers only once a worker loaded the script and its init() returned.
        let healthy = await eventually(timeout: .seconds(120)) {
            guard process.isRunning else { return true }
            return (try? await Answer.get("http://127.0.0.1:\(port)/")) == 200
        }
        guard healthy, process.isRunning else {
            process.stop()
            throw FixtureError.didNotStart("azmlinfsrv", log: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        return (process, port)
    }

    /// Runs `body` with the port of a local API serving `configuration`'s module.
    static func withAPI(_ configuration: ScoringConfiguration, _ body: (Int) async throws -> Void) async throws {
        let host = ScoringHost(configuration: configuration)
        try await host.start()
        let modules = LocalModules()
        modules.set(host)
        do {
            try await LocalAPITests.serving(modules, body)
        } catch {
            await host.stop()
            throw error
        }
        await host.stop()
    }
}

/// One answer of either server: status, JSON body and the request id headers.
struct Answer: CustomStringConvertible {
    var status: Int
    var body: Data
    var headers: [String: String]
    /// The media type of `Content-Type`, without parameters.
    var mediaType: String

    init(_ request: ScoringRequest, to url: String) async throws {
        var urlRequest = URLRequest(url: URL(string: url)!)
        urlRequest.httpMethod = "POST"
        urlRequest.httpBody = request.body
        urlRequest.timeoutInterval = 60
        urlRequest.setValue(request.contentType, forHTTPHeaderField: "Content-Type")
        for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: urlRequest)
        let http = response as? HTTPURLResponse
        status = http?.statusCode ?? 0
        body = data
        mediaType = http?.value(forHTTPHeaderField: "Content-Type")?.split(separator: ";").first
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        headers = [:]
        for name in ["x-request-id", "x-ms-request-id", "x-ms-client-request-id"] {
            headers[name] = http?.value(forHTTPHeaderField: name)
        }
    }

    static func get(_ url: String) async throws -> Int {
        let (_, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    /// Whether both answers carry the same request id headers; an id the server made up
    /// (a UUID) only has to be one on both sides.
    func sameRequestIDs(as theirs: Answer) -> Bool {
        headers.keys.sorted() == theirs.headers.keys.sorted()
            && headers.allSatisfy { name, value in
                let other = theirs.headers[name] ?? ""
                return value == other || (UUID(uuidString: value) != nil && UUID(uuidString: other) != nil)
            }
    }

    var json: Any? { try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }

    /// Whether this (our) answer says what azmlinfsrv's does, in the same media type: the
    /// same bytes for a body that is not JSON (a `@rawhttp` script's CSV), the same JSON for
    /// a result, and for an error of ours every member of azmlinfsrv's body (its `message`)
    /// with the same value, and our own `error` and `module` besides.
    func matches(_ theirs: Answer) -> Bool {
        guard mediaType == theirs.mediaType else { return false }
        guard let other = theirs.json else { return body == theirs.body }
        guard let mine = json else { return false }
        if Self.canonical(mine) == Self.canonical(other) { return true }
        guard let mine = mine as? [String: Any], let other = other as? [String: Any],
            mine["error"] is String, mine["module"] is String
        else { return false }
        return other.allSatisfy { key, value in mine[key].map(Self.canonical) == Self.canonical(value) }
    }

    private static func canonical(_ value: Any) -> String {
        let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
        return data.map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
    }

    var description: String { "\(status) \(mediaType) \(String(decoding: body, as: UTF8.self)) \(headers)" }
}
