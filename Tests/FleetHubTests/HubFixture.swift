import FleetCore
import FleetHub
import FleetTesting
import Foundation

/// A fresh hub workspace in a temp folder, with helpers to make model and script files.
final class HubFixture: Sendable {
    let directory: TemporaryDirectory
    let workspace: Workspace

    /// A plain `mqtt://` broker and an `http://` public URL are allowed (`insecure`,
    /// `insecure-http`) unless told otherwise; the Security tests make TLS workspaces.
    /// `blobs` (`s3://…`, with its endpoint and credentials file) keeps the blobs in a bucket.
    init(
        broker: String = "mqtt://127.0.0.1:1", publicURL: String = "http://hub.test:8080", insecure: Bool = true,
        insecureHTTP: Bool = true, blobs: StorageSettings? = nil
    ) throws {
        directory = try TemporaryDirectory(prefix: "fleethub-test")
        var config = HubConfig(
            broker: broker, publicURL: publicURL, insecure: insecure ? true : nil, insecureHTTP: insecureHTTP ? true : nil,
            database: try HubTestDatabase.fresh())
        config.blobs = blobs?.url
        config.blobsEndpoint = blobs?.endpoint
        config.blobsCredentials = blobs?.credentialsFile
        workspace = try Workspace.create(at: directory.url.appendingPathComponent("workspace"), config: config)
    }

    var models: ModelRegistry { ModelRegistry(workspace: workspace) }
    var modules: ModuleRegistry { ModuleRegistry(workspace: workspace) }
    var devices: DeviceRegistry { DeviceRegistry(workspace: workspace) }
    var deployments: DeploymentStore { DeploymentStore(workspace: workspace) }

    /// Writes `text` to `name` (which may contain folders) and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let url = directory.url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// Registers a model `name` with one file and packages a scoring module around it.
    @discardableResult
    func packagedScorer(model name: String = "iris", module: String = "iris-scorer", weights: String = "w1") throws -> ModuleVersion {
        let path = try write("\(name)/\(name).onnx", weights)
        let model = try models.register(name: name, paths: [path])
        try write("\(module)-src/score.py", "def init():\n    pass\n\ndef run(raw_data):\n    return raw_data\n")
        return try modules.package(PackageRequest(
            name: module, kind: .pythonScoring, model: VersionedName(name: model.name, version: model.version),
            entry: "score.py", source: directory.url.appendingPathComponent("\(module)-src")))
    }

    /// Parses and deploys manifest `text`.
    @discardableResult
    func deploy(_ text: String, file: String = "manifest.yaml", now: Date = Date()) throws -> RolloutChange {
        try deployments.deploy(ManifestParser.parse(text, file: file), now: now)
    }
}
