import FleetCore
import FleetHub
import Foundation
import Testing

/// The model registry on a real SQLite file and blob folder in a temp workspace.
struct ModelRegistryTests {
    let hub: HubFixture

    init() throws {
        hub = try HubFixture()
    }

    @Test func versionsIncrementPerName() throws {
        let file = try hub.write("iris.onnx", "weights")
        #expect(try hub.models.register(name: "iris", paths: [file]).reference == "iris:1")
        #expect(try hub.models.register(name: "iris", paths: [file]).reference == "iris:2")
        #expect(try hub.models.register(name: "mnist", paths: [file]).reference == "mnist:1")
        #expect(try hub.models.show(VersionedName(parsing: "iris")).version == 2)
        #expect(try hub.models.list(name: "iris").map(\.version) == [1, 2])
    }

    @Test func filesAreStoredOnceByHash() throws {
        let file = try hub.write("iris.onnx", "weights")
        try hub.write("folder/a.bin", "weights")
        try hub.write("folder/sub/b.txt", "labels")
        let one = try hub.models.register(name: "iris", paths: [file])
        let two = try hub.models.register(name: "iris", paths: [hub.directory.file("folder")])
        #expect(one.files[0].digest == ContentDigest(of: Data("weights".utf8)))
        #expect(two.files.map(\.path) == ["folder/a.bin", "folder/sub/b.txt"])
        #expect(two.files[0].digest == one.files[0].digest)
        let blobs = try FileManager.default.contentsOfDirectory(atPath: hub.workspace.blobs.root.appendingPathComponent("sha256").path)
        #expect(blobs.sorted() == [ContentDigest(of: Data("labels".utf8)).hex, one.files[0].digest.hex].sorted())
    }

    @Test func tagsAndDescriptionAreKeptAndFilterTheList() throws {
        let file = try hub.write("iris.onnx", "weights")
        try hub.models.register(name: "iris", paths: [file], tags: ["stage": "prod"], description: "Iris classifier")
        try hub.models.register(name: "iris", paths: [file], tags: ["stage": "dev"])
        let prod = try hub.models.list(tags: ["stage": "prod"])
        #expect(prod.map(\.reference) == ["iris:1"])
        #expect(prod[0].description == "Iris classifier")
    }

    @Test func downloadWritesTheFilesBack() throws {
        try hub.write("folder/a.bin", "weights")
        try hub.models.register(name: "iris", paths: [hub.directory.file("folder")])
        let target = hub.directory.url.appendingPathComponent("out")
        try hub.models.download(VersionedName(parsing: "iris:1"), to: target)
        #expect(try String(contentsOf: target.appendingPathComponent("folder/a.bin"), encoding: .utf8) == "weights")
    }

    @Test func badInputChangesNothing() throws {
        #expect(throws: RegistryError.missingPath(hub.directory.file("nope.onnx"))) {
            try hub.models.register(name: "iris", paths: [hub.directory.file("nope.onnx")])
        }
        let file = try hub.write("iris.onnx", "weights")
        #expect(throws: FleetNameError.invalid("bad name", kind: .model)) {
            try hub.models.register(name: "bad name", paths: [file])
        }
        #expect(throws: RegistryError.missingPath(hub.directory.file("nope.onnx"))) {
            try hub.models.register(name: "iris", paths: [file, hub.directory.file("nope.onnx")])
        }
        #expect(try hub.models.list().isEmpty)
        #expect(throws: RegistryError.unknownModel("iris:1")) { try hub.models.show(VersionedName(parsing: "iris:1")) }
    }

    @Test func deleteIsRefusedWhileADeploymentUsesTheModel() throws {
        try hub.packagedScorer()
        try hub.deploy("name: prod\npriority: 1\ntarget: '*'\nmodules:\n  - name: iris\n    bundle: iris-scorer:1\n")
        let iris1 = try VersionedName(parsing: "iris:1")
        #expect(throws: RegistryError.modelInUse("iris:1", deployments: ["prod"])) { try hub.models.delete(iris1) }
        _ = try hub.deployments.delete(name: "prod")
        try hub.models.delete(iris1)
        #expect(try hub.models.list().isEmpty)
    }

    @Test func secondInitIsRefused() throws {
        #expect(throws: WorkspaceError.alreadyExists(hub.workspace.root.path)) {
            try Workspace.create(at: hub.workspace.root, config: HubConfig(broker: "mqtt://127.0.0.1:1883", publicURL: "https://h"))
        }
        let reopened = try Workspace.open(at: hub.workspace.root)
        #expect(reopened.signingKey.publicKey == hub.workspace.signingKey.publicKey)
        let attributes = try FileManager.default.attributesOfItem(atPath: hub.workspace.root.appendingPathComponent("hub-signing.key").path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    @Test func settingsCanBeChangedAndAreChecked() throws {
        let database = try hub.workspace.config().database
        try hub.workspace.set("broker", to: "mqtt://broker.test:1884")
        try hub.workspace.set("public-url", to: "https://hub.test/")
        #expect(
            try hub.workspace.config()
                == HubConfig(
                    broker: "mqtt://broker.test:1884", publicURL: "https://hub.test", insecure: true, insecureHTTP: true,
                    database: database))
        #expect(throws: WorkspaceError.self) { try hub.workspace.set("broker", to: "http://x") }
        #expect(throws: WorkspaceError.unknownSetting("colour")) { try hub.workspace.set("colour", to: "red") }
    }
}
