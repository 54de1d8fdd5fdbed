import FleetCore
import FleetTesting
import Foundation
import Testing

@Suite struct BundleReaderTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory(prefix: "bundle-reader")
    }

    private func write(_ bundle: TestBundle) throws -> URL {
        let url = directory.url.appendingPathComponent("\(UUID().uuidString).zip")
        try bundle.data.write(to: url)
        return url
    }

    private func unpack(_ bundle: TestBundle, limits: BundleLimits = BundleLimits()) throws -> URL {
        let folder = directory.url.appendingPathComponent("module-\(UUID().uuidString)")
        try BundleReader(limits: limits).unpack(archive: try write(bundle), into: folder)
        return folder
    }

    private func leavesNothing() throws -> Bool {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).allSatisfy { $0.hasSuffix(".zip") }
    }

    @Test func unpacksAndVerifiesAValidBundle() throws {
        let bundle = try TestBundle.make(files: ["run.sh": Data("echo hi\n".utf8), "model/weights.bin": Data([1, 2, 3])])
        let archive = try write(bundle)
        try BundleReader().verifyArchive(at: archive, digest: bundle.digest, size: bundle.size)
        let folder = directory.url.appendingPathComponent("module")
        let manifest = try BundleReader().unpack(archive: archive, into: folder)
        #expect(manifest.command == ["/bin/sh", "run.sh"])
        #expect(try Data(contentsOf: folder.appendingPathComponent("model/weights.bin")) == Data([1, 2, 3]))
    }

    @Test func refusesWrongDigestAndSize() throws {
        let bundle = try TestBundle.make(files: ["run.sh": Data("a".utf8)])
        let other = try TestBundle.make(files: ["run.sh": Data("b".utf8)])
        let archive = try write(bundle)
        #expect(throws: BundleError.wrongSize(expected: bundle.size + 1, actual: bundle.size)) {
            try BundleReader().verifyArchive(at: archive, digest: bundle.digest, size: bundle.size + 1)
        }
        #expect(throws: BundleError.wrongDigest(expected: other.digest, actual: bundle.digest)) {
            try BundleReader().verifyArchive(at: archive, digest: other.digest, size: bundle.size)
        }
    }

    @Test(arguments: ["../evil.sh", "model/../../evil.sh", "/etc/evil.sh", "./run2.sh"])
    func refusesPathsThatLeaveTheFolder(path: String) throws {
        let bundle = try TestBundle.make(
            files: ["run.sh": Data("a".utf8)], extra: [.file(path: path, data: Data("pwned".utf8))])
        #expect(throws: BundleError.unsafePath(path)) { try unpack(bundle) }
        #expect(!FileManager.default.fileExists(atPath: directory.url.deletingLastPathComponent().appendingPathComponent("evil.sh").path))
        #expect(try leavesNothing())
    }

    @Test(arguments: ["../../etc/passwd", "/etc/passwd", "model/../.."])
    func refusesLinksThatLeaveTheFolder(target: String) throws {
        let bundle = try TestBundle.make(files: ["run.sh": Data("a".utf8)], extra: [.symlink(path: "link", target: target)])
        #expect(throws: BundleError.unsafeLink(path: "link", target: target)) { try unpack(bundle) }
        #expect(try leavesNothing())
    }

    @Test func keepsLinksThatStayInside() throws {
        let bundle = try TestBundle.make(
            files: ["model/weights.bin": Data([7])], extra: [.symlink(path: "current", target: "model/weights.bin")])
        let folder = try unpack(bundle)
        #expect(try Data(contentsOf: folder.appendingPathComponent("current")) == Data([7]))
    }

    @Test func refusesAFileThatInflatesPastThePerFileLimit() throws {
        // 4 MiB of zeros compress to a few KiB: a small zip bomb.
        let bomb = Data(count: 4 << 20)
        let bundle = try TestBundle.make(files: ["zeros.bin": bomb])
        #expect(bundle.size < 64 << 10)
        let limits = BundleLimits(maximumTotalBytes: 64 << 20, maximumFileBytes: 1 << 20)
        #expect(throws: BundleError.fileTooLarge(path: "zeros.bin", limit: 1 << 20)) { try unpack(bundle, limits: limits) }
        #expect(try leavesNothing())
    }

    @Test func refusesABundlePastTheTotalLimit() throws {
        let files = (1...4).reduce(into: [String: Data]()) { $0["part\($1).bin"] = Data(count: 1 << 20) }
        let bundle = try TestBundle.make(files: files)
        let limits = BundleLimits(maximumTotalBytes: 3 << 20, maximumFileBytes: 2 << 20)
        #expect(throws: BundleError.bundleTooLarge(limit: 3 << 20)) { try unpack(bundle, limits: limits) }
    }

    @Test func refusesAFileWhoseHashDiffersFromModuleJSON() throws {
        let wrong = FileEntry(path: "run.sh", sha256: String(repeating: "0", count: 64), size: 1)
        let bundle = try TestBundle.make(files: ["run.sh": Data("a".utf8)], manifestFiles: [wrong])
        #expect(throws: BundleError.self) { try unpack(bundle) }
        do {
            _ = try unpack(bundle)
        } catch let error as BundleError {
            guard case .fileMismatch(let path, let reason) = error else { Issue.record("\(error)"); return }
            #expect(path == "run.sh")
            #expect(reason.contains("sha256"))
        }
        #expect(try leavesNothing())
    }

    @Test func refusesFilesMissingFromOrNotListedInModuleJSON() throws {
        let listed = FileEntry(path: "other.sh", sha256: String(repeating: "0", count: 64), size: 1)
        let missing = try TestBundle.make(files: [:], manifestFiles: [listed])
        #expect(throws: BundleError.missingFile("other.sh")) { try unpack(missing) }
        let unlisted = try TestBundle.make(files: ["run.sh": Data("a".utf8)], extra: [.file(path: "extra.sh", data: Data())])
        #expect(throws: BundleError.unlistedFile("extra.sh")) { try unpack(unlisted) }
    }

    @Test func refusesABundleWithoutModuleJSON() throws {
        let bundle = TestBundle(data: try TestBundle.zip([.file(path: "run.sh", data: Data("a".utf8))]))
        #expect(throws: BundleError.missingManifest) { try unpack(bundle) }
    }

    @Test func unpacksWhatTheHubsBundleWriterWrites() throws {
        let sources = directory.url.appendingPathComponent("sources")
        try FileManager.default.createDirectory(at: sources.appendingPathComponent("model"), withIntermediateDirectories: true)
        try Data("print('hi')\n".utf8).write(to: sources.appendingPathComponent("score.py"))
        try Data([9, 8, 7]).write(to: sources.appendingPathComponent("model/weights.bin"))
        let manifest = ModuleManifest(
            name: "iris", version: 3, kind: .pythonScoring, entry: "score.py", models: [], files: [], requirements: [],
            createdAt: Date(timeIntervalSince1970: 0))
        let archive = directory.url.appendingPathComponent("written.zip")
        let written = try BundleWriter().write(
            manifest: manifest,
            files: [
                BundleFile(path: "score.py", source: sources.appendingPathComponent("score.py")),
                BundleFile(path: "model/weights.bin", source: sources.appendingPathComponent("model/weights.bin")),
            ],
            to: archive)
        try BundleReader().verifyArchive(at: archive, digest: written.digest, size: written.size)
        let unpacked = try BundleReader().unpack(archive: archive, into: directory.url.appendingPathComponent("iris"))
        #expect(unpacked == written.manifest)
    }
}
