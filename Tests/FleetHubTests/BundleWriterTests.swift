import FleetCore
import FleetTesting
import Foundation
import Testing
import ZIPFoundation

struct BundleWriterTests {
    let directory: TemporaryDirectory
    let files: [BundleFile]
    let manifest = ModuleManifest(
        name: "iris-scorer", version: 1, kind: .pythonScoring, entry: "score.py",
        models: [ModelFileEntry(name: "iris", version: 1, path: "model/iris.onnx", sha256: String(repeating: "0", count: 64))],
        files: [], requirements: ["numpy"], createdAt: Date(timeIntervalSince1970: 1_700_000_000))

    init() throws {
        directory = try TemporaryDirectory(prefix: "bundle-test")
        try Data("def run(x):\n    return x\n".utf8).write(to: URL(fileURLWithPath: directory.file("score.py")))
        try Data([1, 2, 3, 4]).write(to: URL(fileURLWithPath: directory.file("iris.onnx")))
        files = [
            BundleFile(path: "score.py", source: URL(fileURLWithPath: directory.file("score.py"))),
            BundleFile(path: "model/iris.onnx", source: URL(fileURLWithPath: directory.file("iris.onnx"))),
        ]
    }

    @Test func sameInputsGiveTheSameDigest() throws {
        let first = try BundleWriter().write(manifest: manifest, files: files, to: URL(fileURLWithPath: directory.file("a.zip")))
        // Different input order and a later file time must not matter.
        try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: directory.file("score.py"))
        let second = try BundleWriter().write(
            manifest: manifest, files: files.reversed(), to: URL(fileURLWithPath: directory.file("b.zip")))
        #expect(first.digest == second.digest)
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.file("a.zip")))
            == Data(contentsOf: URL(fileURLWithPath: directory.file("b.zip"))))
        #expect(first.digest == (try ContentDigest(ofFileAt: URL(fileURLWithPath: directory.file("a.zip")))))
    }

    @Test func progressCoversEveryStepToItsTotal() throws {
        var seen: [BundleProgress.Step: BundleProgress] = [:]
        let written = try BundleWriter().write(manifest: manifest, files: files, to: URL(fileURLWithPath: directory.file("a.zip"))) {
            seen[$0.step] = $0
        }
        let inputs = Int64(written.manifest.files.reduce(0) { $0 + $1.size })
        #expect(seen[.hashing].map { [$0.bytesDone, $0.bytesTotal] } == [inputs, inputs])
        #expect(seen[.compressing].map { [$0.bytesDone, $0.bytesTotal] } == [inputs, inputs])
        #expect(seen[.digesting].map { [$0.bytesDone, $0.bytesTotal] } == [Int64(written.size), Int64(written.size)])
    }

    @Test func wouldEqualComparesTheManifestAndEveryMode() throws {
        let url = URL(fileURLWithPath: directory.file("a.zip"))
        let written = try BundleWriter().write(manifest: manifest, files: files, to: url)
        let again = try BundleWriter().completed(manifest, files: files)
        #expect(again == written.manifest)
        #expect(BundleWriter().wouldEqual(again, files: files, existing: url))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.file("score.py"))
        #expect(!BundleWriter().wouldEqual(again, files: files, existing: url))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: directory.file("score.py"))
        try Data([9]).write(to: URL(fileURLWithPath: directory.file("iris.onnx")))
        #expect(!BundleWriter().wouldEqual(try BundleWriter().completed(manifest, files: files), files: files, existing: url))
    }

    @Test func differentContentGivesADifferentDigest() throws {
        let first = try BundleWriter().write(manifest: manifest, files: files, to: URL(fileURLWithPath: directory.file("a.zip")))
        try Data([9]).write(to: URL(fileURLWithPath: directory.file("iris.onnx")))
        let second = try BundleWriter().write(manifest: manifest, files: files, to: URL(fileURLWithPath: directory.file("b.zip")))
        #expect(first.digest != second.digest)
    }

    @Test func archiveHoldsSortedEntriesAndAManifestHashingEveryFile() throws {
        let url = URL(fileURLWithPath: directory.file("a.zip"))
        let written = try BundleWriter().write(manifest: manifest, files: files, to: url)
        let archive = try Archive(url: url, accessMode: .read)
        let paths = archive.map(\.path)
        #expect(paths == ["model/iris.onnx", "module.json", "score.py"])
        var data = Data()
        _ = try archive.extract(try #require(archive["module.json"])) { data.append($0) }
        let stored = try FleetJSON.decode(ModuleManifest.self, from: data)
        #expect(stored == written.manifest)
        #expect(stored.files.map(\.path) == ["model/iris.onnx", "score.py"])
        #expect(stored.files[0] == FileEntry(path: "model/iris.onnx", sha256: ContentDigest(of: Data([1, 2, 3, 4])).hex, size: 4))
    }

    @Test func refusesUnsafeOrDuplicatePaths() {
        let source = files[0].source
        // Every path the device's reader would refuse is refused here first.
        for path in ["../x", "/etc/x", "a//b", "./a", "model\\iris.onnx", "a\0b", ""] {
            #expect(throws: BundleWriteError.badPath(path)) {
                try BundleWriter().write(manifest: manifest, files: [BundleFile(path: path, source: source)], to: URL(fileURLWithPath: directory.file("c.zip")))
            }
        }
        #expect(throws: BundleWriteError.duplicatePath("module.json")) {
            try BundleWriter().write(manifest: manifest, files: [BundleFile(path: "module.json", source: source)], to: URL(fileURLWithPath: directory.file("c.zip")))
        }
    }
}
