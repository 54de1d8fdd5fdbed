import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing
import ZIPFoundation

struct ModuleRegistryTests {
    let hub: HubFixture

    init() throws {
        hub = try HubFixture()
    }

    @Test func packagesAScoringModuleWithItsModel() throws {
        let module = try hub.packagedScorer()
        #expect(module.reference == "iris-scorer:1")
        #expect(hub.workspace.blobs.contains(module.digest))
        #expect(module.manifest.entry == "score.py")
        #expect(module.manifest.models.map(\.path) == ["model/iris.onnx"])
        #expect(module.manifest.files.map(\.path) == ["model/iris.onnx", "score.py"])
        let archive = try Archive(url: hub.workspace.blobs.url(for: module.digest), accessMode: .read)
        #expect(archive.map(\.path) == ["model/iris.onnx", "module.json", "score.py"])
        #expect(try hub.modules.show(VersionedName(parsing: "iris-scorer")) == module)
    }

    @Test func processModuleCarriesItsCommandAndRequirements() throws {
        try hub.write("agent/agent.sh", "#!/bin/sh\necho hi\n")
        let requirements = try hub.write("requirements.txt", "# pinned\nrequests==2.32.3\n\n")
        let module = try hub.modules.package(PackageRequest(
            name: "site-agent", kind: .process, command: ["/bin/sh", "agent.sh"],
            source: hub.directory.url.appendingPathComponent("agent"), requirements: URL(fileURLWithPath: requirements)))
        #expect(module.manifest.command == ["/bin/sh", "agent.sh"])
        #expect(module.manifest.requirements == ["requests==2.32.3"])
        #expect(module.manifest.files.map(\.path) == ["agent.sh"])
        #expect(module.manifest.models.isEmpty)
    }

    @Test func badInputIsRefusedAndRegistersNothing() throws {
        try hub.write("src/score.py", "def run(x): return x\n")
        let source = hub.directory.url.appendingPathComponent("src")
        #expect(throws: RegistryError.unknownModel("iris:1")) {
            try hub.modules.package(PackageRequest(name: "s", kind: .pythonScoring, model: VersionedName(name: "iris", version: 1), entry: "score.py", source: source))
        }
        try hub.models.register(name: "iris", paths: [hub.write("iris.onnx", "w")])
        #expect(throws: RegistryError.missingEntry("main.py", in: source.path)) {
            try hub.modules.package(PackageRequest(name: "s", kind: .pythonScoring, model: VersionedName(name: "iris", version: 1), entry: "main.py", source: source))
        }
        #expect(throws: RegistryError.self) {
            try hub.modules.package(PackageRequest(name: "s", kind: .process, source: source))
        }
        #expect(try hub.modules.list().isEmpty)
    }

    @Test func packagingTheSameInputsAgainGivesTheSameVersionAndDigest() throws {
        let first = try hub.packagedScorer()
        let request = PackageRequest(
            name: "iris-scorer", kind: .pythonScoring, model: VersionedName(name: "iris", version: 1), entry: "score.py",
            source: hub.directory.url.appendingPathComponent("iris-scorer-src"))
        #expect(try hub.modules.package(request) == first)
        try hub.write("iris-scorer-src/score.py", "def run(raw_data):\n    return 42\n")
        let changed = try hub.modules.package(request)
        #expect(changed.version == 2)
        #expect(changed.digest != first.digest)
        #expect(try hub.modules.list(name: "iris-scorer").map(\.version) == [1, 2])
    }

    /// Identical inputs are only hashed, never compressed again; a changed mode is a change.
    @Test func repackagingIdenticalInputsOnlyHashesThem() throws {
        try hub.packagedScorer()
        let request = PackageRequest(
            name: "iris-scorer", kind: .pythonScoring, model: VersionedName(name: "iris", version: 1), entry: "score.py",
            source: hub.directory.url.appendingPathComponent("iris-scorer-src"))
        var steps = Set<BundleProgress.Step>()
        #expect(try hub.modules.package(request) { steps.insert($0.step) }.version == 1)
        #expect(steps == [.hashing])

        let script = hub.directory.url.appendingPathComponent("iris-scorer-src/score.py").path
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        steps = []
        var last: BundleProgress?
        let executable = try hub.modules.package(request) { steps.insert($0.step); last = $0 }
        #expect(executable.version == 2)
        #expect(steps == [.hashing, .compressing, .digesting])
        #expect(last?.step == .digesting)
        #expect(last?.bytesDone == Int64(executable.size))
    }

    func agentRequest(_ folder: String, script: String) throws -> PackageRequest {
        try hub.write("\(folder)/agent.sh", script)
        return PackageRequest(
            name: "site-agent", kind: .process, command: ["/bin/sh", "agent.sh"],
            source: hub.directory.url.appendingPathComponent(folder))
    }

    /// Files left in the blob store's scratch folder: a bundle that was built but not registered.
    func scratchFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: hub.workspace.blobs.root.appendingPathComponent("tmp").path)
    }

    /// The bundle is built outside the write transaction, so another packaging of the
    /// same name can take the version meanwhile (here from inside the progress callback):
    /// the first then builds the next version, and leaves no bundle behind.
    @Test func aPackagingWhoseVersionWasTakenMeanwhileBuildsTheNextOne() throws {
        let first = try agentRequest("agent-a", script: "#!/bin/sh\necho a\n")
        let other = try agentRequest("agent-b", script: "#!/bin/sh\necho b\n")
        var meanwhile: ModuleVersion?
        var builds = 0
        var step: BundleProgress.Step?
        let module = try hub.modules.package(first) { progress in
            defer { step = progress.step }
            guard progress.step == .compressing, step != .compressing else { return }
            builds += 1
            if meanwhile == nil { meanwhile = try? hub.modules.package(other) }
        }
        #expect(meanwhile?.version == 1)
        #expect(module.version == 2)
        #expect(builds == 2, "the bundle was not built again for the next version")
        #expect(try hub.modules.list(name: "site-agent").map(\.digest) == [meanwhile?.digest, module.digest].compactMap { $0 })
        #expect(hub.workspace.blobs.contains(module.digest))
        #expect(try scratchFiles().isEmpty)
    }

    /// When the packaging that finished meanwhile had the same inputs, its version is the answer.
    @Test func aPackagingOvertakenByTheSameInputsReturnsThatVersion() throws {
        let request = try agentRequest("agent", script: "#!/bin/sh\necho a\n")
        var meanwhile: ModuleVersion?
        let module = try hub.modules.package(request) { progress in
            if meanwhile == nil, progress.step == .compressing { meanwhile = try? hub.modules.package(request) }
        }
        #expect(meanwhile?.version == 1)
        #expect(module == meanwhile)
        #expect(try hub.modules.list(name: "site-agent").map(\.version) == [1])
        #expect(try scratchFiles().isEmpty)
    }
}

/// `--vendor-wheels` with the real pip, offline: the requirements file points pip at a
/// local folder holding a wheel this test builds.
struct VendorWheelsTests {
    @Test func requirementsAreDownloadedAsWheelsIntoTheBundle() throws {
        let hub = try HubFixture()
        let wheels = hub.directory.url.appendingPathComponent("wheelhouse")
        try FileManager.default.createDirectory(at: wheels, withIntermediateDirectories: true)
        let wheel = "tinypkg-0.1-py3-none-any.whl"
        let archive = try Archive(url: wheels.appendingPathComponent(wheel), accessMode: .create)
        let entries = [
            "tinypkg/__init__.py": "VALUE = 1\n",
            "tinypkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
            "tinypkg-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            "tinypkg-0.1.dist-info/RECORD": "",
        ]
        for (path, text) in entries.sorted(by: { $0.key < $1.key }) {
            let data = Data(text.utf8)
            try archive.addEntry(with: path, type: .file, uncompressedSize: Int64(data.count)) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        let requirements = try hub.write("requirements.txt", "--no-index\n--find-links \(wheels.path)\ntinypkg==0.1\n")
        try hub.models.register(name: "iris", paths: [hub.write("iris.onnx", "w")])
        try hub.write("src/score.py", "def run(x): return x\n")
        let module = try hub.modules.package(PackageRequest(
            name: "iris-scorer", kind: .pythonScoring, model: VersionedName(name: "iris", version: 1), entry: "score.py",
            source: hub.directory.url.appendingPathComponent("src"), requirements: URL(fileURLWithPath: requirements),
            vendorWheels: true))
        #expect(module.manifest.requirements == ["tinypkg==0.1"])
        let vendored = try #require(module.manifest.files.first { $0.path == "wheels/\(wheel)" })
        // The device installs the vendored wheel, so that is the artifact pinned.
        #expect(module.manifest.pins == [RequirementPin(name: "tinypkg", version: "0.1", sha256: vendored.sha256)])
        #expect(module.manifest.indexOptions == nil)
    }
}

/// Modules that could not start on a device are refused at packaging, and nothing is registered.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "python3")))
struct ModulePackagingChecksTests {
    let hub: HubFixture

    init() throws {
        hub = try HubFixture()
        try hub.models.register(name: "iris", paths: [hub.write("iris.onnx", "w")])
    }

    func scorer(_ script: String, requirements: String? = nil) throws -> ModuleVersion {
        try hub.write("src/score.py", script)
        return try hub.modules.package(PackageRequest(
            name: "iris-scorer", kind: .pythonScoring, model: VersionedName(name: "iris", version: 1), entry: "score.py",
            source: hub.directory.url.appendingPathComponent("src"),
            requirements: try requirements.map { URL(fileURLWithPath: try hub.write("requirements.txt", $0)) }))
    }

    @Test func aScoringScriptWithASyntaxErrorIsRefusedWithItsLine() throws {
        #expect {
            try scorer("def init():\n    pass\n\ndef run(raw_data)\n    return raw_data\n")
        } throws: { error in
            "\(error)".contains("score.py:4: ") && "\(error)".contains("def run(raw_data)")
        }
        #expect(try hub.modules.list().isEmpty)
        #expect(try scorer("def run(raw_data):\n    return raw_data\n").version == 1)
    }

    @Test func requirementsThatCannotBeResolvedAreRefusedWithPipsError() throws {
        #expect {
            try scorer("def run(x):\n    return x\n", requirements: "--no-index\nno-such-package-xyz==1.0\n")
        } throws: { error in
            "\(error)".contains("No matching distribution found for no-such-package-xyz==1.0")
                && "\(error)".contains("requirements.txt")
        }
        #expect(try hub.modules.list().isEmpty)
    }

    @Test func aProcessCommandThatIsNotExecutableIsRefused() throws {
        let script = try hub.write("agent/run.sh", "#!/bin/sh\nexec sleep 1\n")
        func package(_ command: [String]) throws -> ModuleVersion {
            try hub.modules.package(PackageRequest(
                name: "agent", kind: .process, command: command, source: hub.directory.url.appendingPathComponent("agent")))
        }
        #expect { try package(["./run.sh"]) } throws: { "\($0)".contains("is not executable") && "\($0)".contains("chmod +x") }
        #expect { try package(["./missing.sh"]) } throws: { "\($0)".contains("missing.sh is not in the bundle") }
        #expect { try package(["run.sh"]) } throws: { "\($0)".contains("write ./run.sh") }
        #expect(try hub.modules.list().isEmpty)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        #expect(try package(["./run.sh"]).manifest.command == ["./run.sh"])
        #expect(try package(["/bin/sh", "run.sh"]).version == 2)
    }
}

/// `fleethub module package` pins every distribution its requirements resolve to, against
/// a real local index (pip and `python3 -m http.server`), so devices install exactly those.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "python3")))
struct RequirementPinningTests {
    let hub: HubFixture
    let index: PackageIndex

    init() async throws {
        hub = try HubFixture()
        index = try await PackageIndex()
        try hub.models.register(name: "iris", paths: [hub.write("iris.onnx", "w")])
        try hub.write("src/score.py", "import tinypkg\n\ndef run(x):\n    return tinypkg.VALUE\n")
    }

    func package(requirements: String) throws -> ModuleVersion {
        try hub.modules.package(PackageRequest(
            name: "iris-scorer", kind: .pythonScoring, model: VersionedName(name: "iris", version: 1), entry: "score.py",
            source: hub.directory.url.appendingPathComponent("src"),
            requirements: URL(fileURLWithPath: try hub.write("requirements.txt", requirements))))
    }

    /// The sha256 Python's hashlib gives the file.
    static func sha256(_ file: URL) throws -> String {
        try Fixtures.run(
            Fixtures.which("python3") ?? "python3",
            ["-c", "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())", file.path]
        ).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func packagingPinsTheVersionAndHashOfTheServedArtifact() throws {
        let served = try index.publish("tinypkg", version: "0.1", value: "1")
        let module = try package(requirements: "--index-url \(index.url)\n# the one dependency\ntinypkg==0.1\n")
        let expected = [RequirementPin(name: "tinypkg", version: "0.1", sha256: try Self.sha256(served))]
        #expect(module.manifest.pins == expected)
        #expect(module.manifest.indexOptions == ["--index-url \(index.url)"])
        #expect(module.manifest.requirements == ["tinypkg==0.1"])
        // What the device reads: the signed bundle's own module.json.
        let archive = try Archive(url: hub.workspace.blobs.url(for: module.digest), accessMode: .read)
        var json = Data()
        _ = try archive.extract(try #require(archive["module.json"])) { json.append($0) }
        #expect(try FleetJSON.decode(ModuleManifest.self, from: json).pins == expected)
    }

    @Test func aDirectURLNeedsItsHash() throws {
        let served = try index.publish("tinypkg", version: "0.1", value: "1")
        let url = "\(index.url)tinypkg/\(served.lastPathComponent)"
        #expect {
            try package(requirements: "tinypkg @ \(url)\n")
        } throws: { error in
            "\(error)".contains("requirements.txt:1: tinypkg @ \(url)") && "\(error)".contains("without a hash")
        }
        #expect(try hub.modules.list().isEmpty)
        let sha256 = try Self.sha256(served)
        let module = try package(requirements: "tinypkg @ \(url)#sha256=\(sha256)\n")
        #expect(module.manifest.pins == [RequirementPin(name: "tinypkg", version: "0.1", sha256: sha256, url: url)])
    }

    @Test func aLocalPathIsRefusedNamingItsLine() throws {
        let folder = hub.directory.url.appendingPathComponent("local-wheels")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let wheel = try PackageIndex.buildWheel("tinypkg", version: "0.1", value: "1", into: folder)
        #expect {
            try package(requirements: "# local build\n\(wheel.path)\n")
        } throws: { error in
            "\(error)".contains("requirements.txt:2: \(wheel.path)") && "\(error)".contains("local file")
        }
        #expect(try hub.modules.list().isEmpty)
    }
}
