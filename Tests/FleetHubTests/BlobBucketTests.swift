import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// A workspace whose blobs live in a real SeaweedFS bucket; the objects are listed
/// with boto3, a client independent of the code under test.
@Suite(.serialized, .enabled(if: SeaweedFS.shouldRun), .timeLimit(.minutes(2)))
struct BlobBucketTests {
    /// A started server with bucket `blobs` and a credentials file for it in `directory`.
    struct Bucket {
        let seaweed: SeaweedFS
        let directory: TemporaryDirectory
        let credentials: String

        static func start() async throws -> Bucket {
            let seaweed = try await SeaweedFS.start()
            try await seaweed.createBucket("blobs")
            let directory = try TemporaryDirectory(prefix: "blob-bucket")
            let credentials = directory.file("s3.ini")
            try seaweed.writeCredentialsFile(to: credentials)
            return Bucket(seaweed: seaweed, directory: directory, credentials: credentials)
        }

        func settings(_ url: String = "s3://blobs/hub", endpoint: String? = nil, credentials: String? = nil) -> StorageSettings {
            StorageSettings(url: url, endpoint: endpoint ?? seaweed.endpoint, credentialsFile: credentials ?? self.credentials)
        }
    }

    /// Registering and packaging upload every file and bundle as `hub/sha256/<hex>`; a
    /// host without the local copies (another instance) downloads and packages from them.
    @Test func registeredModelsAndPackagedBundlesLiveInTheBucket() async throws {
        let bucket = try await Bucket.start()
        defer { bucket.seaweed.stop() }
        let hub = try HubFixture(blobs: bucket.settings())
        let module = try hub.packagedScorer(weights: String(repeating: "w", count: 3000))
        let model = try hub.models.show(VersionedName(name: "iris", version: 1))
        let objects = try bucket.seaweed.sizes(bucket: "blobs", prefix: "hub/")
        #expect(objects["hub/sha256/\(module.digest.hex)"] == module.size, "\(objects)")
        #expect(objects["hub/sha256/\(model.files[0].digest.hex)"] == 3000, "\(objects)")

        let local = hub.workspace.blobs.root.appendingPathComponent("sha256")
        try FileManager.default.removeItem(at: local)
        try FileManager.default.createDirectory(at: local, withIntermediateDirectories: true)
        let downloaded = hub.directory.url.appendingPathComponent("downloaded")
        try hub.models.download(VersionedName(name: "iris", version: 1), to: downloaded)
        #expect(try String(contentsOf: downloaded.appendingPathComponent("iris.onnx"), encoding: .utf8) == String(repeating: "w", count: 3000))
        let again = try hub.modules.package(PackageRequest(
            name: "iris-scorer", kind: .pythonScoring, model: VersionedName(name: "iris", version: 1), entry: "score.py",
            source: hub.directory.url.appendingPathComponent("iris-scorer-src")))
        #expect(again == module)
    }

    /// Moving a workspace's blobs into a bucket uploads the ones it holds, so every
    /// instance serves the bundles packaged before.
    @Test func movingAWorkspaceIntoABucketUploadsItsBlobs() async throws {
        let bucket = try await Bucket.start()
        defer { bucket.seaweed.stop() }
        let hub = try HubFixture()
        let module = try hub.packagedScorer()
        try hub.workspace.set("blobs-endpoint", to: bucket.seaweed.endpoint)
        try hub.workspace.set("blobs-credentials", to: bucket.credentials)
        try hub.workspace.set("blobs", to: "s3://blobs/moved")
        #expect(try hub.workspace.config().blobs == "s3://blobs/moved")
        #expect(try bucket.seaweed.sizes(bucket: "blobs", prefix: "moved/")["moved/sha256/\(module.digest.hex)"] == module.size)
    }

    /// Each bad setting fails with an error naming what is wrong, and creates no workspace.
    @Test func badBlobSettingsNameTheProblemAndCreateNothing() async throws {
        let bucket = try await Bucket.start()
        defer { bucket.seaweed.stop() }
        let wrongSecret = bucket.directory.file("wrong.ini")
        try bucket.seaweed.writeCredentialsFile(to: wrongSecret, secret: "not-the-secret")
        let nobody = "http://127.0.0.1:\(try Fixtures.freePort())"
        let cases: [(StorageSettings, String)] = [
            (bucket.settings("gs://blobs/hub"), "'gs://blobs/hub' is not a valid blobs: expected s3://BUCKET/PREFIX"),
            (bucket.settings("s3:///hub"), "'s3:///hub' is not a valid blobs"),
            (bucket.settings(endpoint: nobody), "cannot reach s3://blobs at \(nobody)"),
            (bucket.settings(credentials: wrongSecret), "refused the credentials"),
            (bucket.settings("s3://no-such-bucket/hub"), "bucket 'no-such-bucket' does not exist"),
        ]
        for (settings, message) in cases {
            let directory = try TemporaryDirectory(prefix: "bad-blobs")
            var config = HubConfig(broker: "mqtt://127.0.0.1:1", publicURL: "http://hub.test:8080", insecure: true, insecureHTTP: true)
            #expect {
                try config.set(.blobsEndpoint, to: settings.endpoint ?? "")
                try config.set(.blobsCredentials, to: settings.credentialsFile ?? "")
                try config.set(.blobs, to: settings.url)
                try Workspace.create(at: directory.url.appendingPathComponent("workspace"), config: config)
            } throws: { error in
                "\(error)".contains(message)
            }
            #expect(!FileManager.default.fileExists(atPath: directory.file("workspace")), "\(settings.url)")
        }

        let hub = try HubFixture()
        try hub.workspace.set("blobs-endpoint", to: bucket.seaweed.endpoint)
        try hub.workspace.set("blobs-credentials", to: wrongSecret)
        #expect {
            try hub.workspace.set("blobs", to: "s3://blobs/hub")
        } throws: { error in
            "\(error)".contains("cannot keep the blobs in s3://blobs/hub") && "\(error)".contains("refused the credentials")
        }
        #expect(try hub.workspace.config().blobs == nil)
    }
}
