import FleetCore
@testable import EdgeRuntime
import FleetTesting
import Foundation
import Testing

/// The device's cache of bundles and environments that left it: kept within the
/// budget, least recently used evicted first, what is in use never.
struct BundleCacheTests {
    let directory: TemporaryDirectory
    let data: DataDirectory

    init() throws {
        directory = try TemporaryDirectory(prefix: "bundle-cache")
        data = DataDirectory(directory.url)
        try data.create()
    }

    /// A bundle of `bytes` (archive and unpacked folder half each) last used `age` seconds ago.
    func bundle(_ name: String, bytes: Int, age: TimeInterval) throws -> ContentDigest {
        let digest = ContentDigest(of: Data(name.utf8))
        try Data(count: bytes / 2).write(to: data.bundle(digest))
        try FileManager.default.createDirectory(at: data.moduleFolder(digest), withIntermediateDirectories: true)
        try Data(count: bytes / 2).write(to: data.moduleFolder(digest).appendingPathComponent("model.onnx"))
        let used = Date().addingTimeInterval(-age)
        for url in [data.bundle(digest), data.moduleFolder(digest)] {
            try FileManager.default.setAttributes([.modificationDate: used], ofItemAtPath: url.path)
        }
        return digest
    }

    func environment(_ key: String, bytes: Int) throws {
        let folder = data.environments.appendingPathComponent(key)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(count: bytes).write(to: folder.appendingPathComponent("lib.so"))
    }

    func exists(_ digest: ContentDigest) -> Bool {
        FileManager.default.fileExists(atPath: data.bundle(digest).path)
            && FileManager.default.fileExists(atPath: data.moduleFolder(digest).path)
    }

    @Test func evictsTheLeastRecentlyUsedUntilTheRestFitsAndNeverWhatIsInUse() throws {
        let running = try bundle("running", bytes: 5000, age: 9000)
        let recent = try bundle("recent", bytes: 1000, age: 10)
        let older = try bundle("older", bytes: 1000, age: 100)
        let oldest = try bundle("oldest", bytes: 1000, age: 1000)
        try environment("env-recent", bytes: 500)
        try environment("env-oldest", bytes: 500)
        try environment("env-running", bytes: 500)
        try Data(count: 10).write(to: data.partialBundle(ContentDigest(of: Data("gone".utf8))))
        let keys = [recent: "env-recent", oldest: "env-oldest", running: "env-running"]

        let evictions = BundleCache(dataDirectory: data, budget: 2600).trim(inUse: [running]) { keys[$0] }
        #expect(exists(running) && exists(recent) && exists(older))
        #expect(!exists(oldest))
        #expect(evictions == [
            .init(name: oldest.description, kind: .bundle, bytes: 1000, lastUsed: evictions.first?.lastUsed ?? .distantPast),
            .init(name: "env-oldest", kind: .environment, bytes: 500, lastUsed: evictions.last?.lastUsed ?? .distantPast),
        ])
        #expect(abs((evictions.first?.lastUsed.timeIntervalSinceNow ?? 0) + 1000) < 5)
        let environments = try FileManager.default.contentsOfDirectory(atPath: data.environments.path).sorted()
        #expect(environments == ["env-recent", "env-running"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: data.bundles.path).allSatisfy { $0.hasSuffix(".zip") })
        // What is in use counts as used now: it outlives the cached ones once it leaves.
        let touched = try FileManager.default.attributesOfItem(atPath: data.bundle(running).path)[.modificationDate] as? Date
        #expect(abs(touched?.timeIntervalSinceNow ?? -100) < 5)
    }

    @Test func aZeroBudgetKeepsOnlyWhatIsInUse() throws {
        let running = try bundle("running", bytes: 100, age: 0)
        let left = try bundle("left", bytes: 100, age: 0)
        try environment("env-left", bytes: 10)
        let evictions = BundleCache(dataDirectory: data, budget: 0).trim(inUse: [running]) { $0 == left ? "env-left" : nil }
        #expect(exists(running))
        #expect(!exists(left))
        #expect(evictions.map(\.kind) == [.bundle, .environment])
    }
}
