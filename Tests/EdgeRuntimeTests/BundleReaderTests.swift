import FleetCore
import FleetTesting
import Foundation
import Synchronization
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

    /// Found by `scripts/fuzz` (FuzzBundle): a deflated entry whose stream does not end
    /// where its record says made ZIPFoundation loop forever on empty reads at the end of
    /// the file. It is now refused, naming the entry, at once.
    @Test func anEntryWhoseDeflateStreamDoesNotEndIsRefusedInsteadOfHanging() throws {
        let hex = [
        "504b030414000008080000002100120b631c03000000010000000c0000006d6f64656c2f6d2e6f6e6e782b0700504b030414",
        "000008080000002100463d291625010000970200000b0000006d6f64756c652e6a736f6ec552cb4ec33010bcf31551ce6df1",
        "ae5f716ffc03271007d75e538bc6294e4094aaff4ee256a54570e662c9e3d9d99991f7375555bb4c76207f37d4d5b2aa91a1",
        "9a03ce19dc035f0abd04f150cf261ea521ef0aa7775da6c57677c443dc503fe18fe3adaaf6e51cf1ad1dd685de769e36b7ed",
        "a24be9a38c94e77e6d51aa42908c340209e318f0c09853e8823401417129d01adff8c050284181560aa4e7c024ac58f0de71",
        "5417a2f193264928c061f687a3ab003fddd80608080000002100120b631c03000000010000000c0000090000000000000000",
        "a481000000006d6f64656c2f6d2e6f6e6e78504b0102150314000008080000002100463d291625010000970200000b000000",
        "0000000000000000a4812d0000007b01000073636f72652e7079504b05060000000003000300a90000210084fd9092310000",
        "003d0000000800000073636f72652e70794b494d53c8cccb2cd1d0b4e252008282c4e2622eae14a06851699e465162797c4a",
        "62492254b228b5a4b4284f0126ca0500504b0102150314000008080000002100120b631c03000000010000000c0000000000",
        "000000000000a481000000006d6f64656c2f6d2e6f6e6e78504b0102150314000008080000002100463d2916250100009702",
        "00000b0000000000000000000000a4812d0000006d6f64756c652e6a736f6e504b010215031400000808000000210084fd90",
        "92310000003d000000080000000000000000000000a4817b01007363006f72652e7079504b05060000080800000300a90000",
        "00d20100000000"
        ].joined()
        let bytes = stride(from: 0, to: hex.count, by: 2).map { offset -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
        let archive = directory.url.appendingPathComponent("fuzzed.zip")
        try Data(bytes).write(to: archive)
        let folder = directory.url.appendingPathComponent("fuzzed")
        let outcome = Mutex<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            do {
                try BundleReader(limits: BundleLimits(maximumTotalBytes: 16 << 20, maximumFileBytes: 8 << 20, maximumEntries: 1_000))
                    .unpack(archive: archive, into: folder)
                outcome.withLock { $0 = "unpacked" }
            } catch {
                outcome.withLock { $0 = "\(error)" }
            }
            done.signal()
        }.start()
        #expect(done.wait(timeout: .now() + 10) == .success, "unpacking did not finish within 10 s")
        let message = outcome.withLock { $0 } ?? ""
        #expect(message.contains("deflate stream does not end") || message.contains("runs past the end"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: folder.path))
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
