import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// Real venvs made with the system's python3.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "python3")))
struct PythonEnvironmentsTests {
    let directory: TemporaryDirectory
    let environments: PythonEnvironments

    init() throws {
        directory = try TemporaryDirectory(prefix: "environments")
        let dataDirectory = DataDirectory(directory.url)
        try dataDirectory.create()
        environments = PythonEnvironments(dataDirectory: dataDirectory)
    }

    @Test func keyIgnoresOrderAndBlankLines() {
        #expect(PythonEnvironments.key(for: ["numpy==2.0", " scikit-learn ", ""]) == PythonEnvironments.key(for: ["scikit-learn", "numpy==2.0"]))
        #expect(PythonEnvironments.key(for: ["numpy==2.0"]) != PythonEnvironments.key(for: ["numpy==2.1"]))
    }

    /// An older bundle's bare requirements keep their environment key (so its environment is
    /// reused) and are what the runtime warns about; pins make their own key.
    @Test func unpinnedRequirementsKeepTheirKeyAndArePinnedOnlyByTheHub() {
        let unpinned = EnvironmentRequirements(requirements: ["tinypkg==0.1"])
        #expect(unpinned.isUnpinned)
        #expect(unpinned.key == PythonEnvironments.key(for: ["tinypkg==0.1"]))
        #expect(!EnvironmentRequirements(requirements: []).isUnpinned)
        let pinned = EnvironmentRequirements(
            requirements: ["tinypkg==0.1"], pins: [RequirementPin(name: "tinypkg", version: "0.1", sha256: "ab")],
            indexOptions: ["--index-url http://127.0.0.1:1/simple/"])
        #expect(!pinned.isUnpinned)
        #expect(pinned.key == PythonEnvironments.key(for: ["tinypkg==0.1 --hash=sha256:ab"]))
    }

    @Test func installsVendoredWheelsWithoutAnIndexAndReusesTheEnvironment() async throws {
        let wheels = directory.url.appendingPathComponent("wheels")
        try FileManager.default.createDirectory(at: wheels, withIntermediateDirectories: true)
        try PackageIndex.buildWheel("tinypkg", version: "0.1", value: "42", into: wheels)

        let environment = try await environments.prepare(requirements: EnvironmentRequirements(requirements: ["tinypkg==0.1"]), wheels: wheels)
        #expect(environments.isReady(for: EnvironmentRequirements(requirements: ["tinypkg==0.1"])))
        let output = try Fixtures.run(
            environment.appendingPathComponent("bin/python").path, ["-c", "import tinypkg; print(tinypkg.VALUE)"])
        #expect(output == "42\n")

        // Ready environments are reused as they are.
        let marker = environment.appendingPathComponent(".ready").path
        let created = try FileManager.default.attributesOfItem(atPath: marker)[.modificationDate] as? Date
        #expect(try await environments.prepare(requirements: EnvironmentRequirements(requirements: ["tinypkg==0.1"]), wheels: wheels).path == environment.path)
        #expect(try FileManager.default.attributesOfItem(atPath: marker)[.modificationDate] as? Date == created)
    }

    /// Pins install exactly the artifact the hub hashed: another wheel under the same name and
    /// version is refused with pip's hash-mismatch error, and the environment already made stays.
    @Test func pinnedRequirementsInstallOnlyTheHashedArtifact() async throws {
        let wheels = directory.url.appendingPathComponent("wheels")
        try FileManager.default.createDirectory(at: wheels, withIntermediateDirectories: true)
        let wheel = try PackageIndex.buildWheel("tinypkg", version: "0.1", value: "42", into: wheels)
        let good = EnvironmentRequirements(
            requirements: ["tinypkg==0.1"],
            pins: [RequirementPin(name: "tinypkg", version: "0.1", sha256: ContentDigest(of: try Data(contentsOf: wheel)).hex)])
        let environment = try await environments.prepare(requirements: good, wheels: wheels)
        let python = environment.appendingPathComponent("bin/python").path
        #expect(try Fixtures.run(python, ["-c", "import tinypkg; print(tinypkg.VALUE)"]) == "42\n")
        let file = try String(contentsOf: environment.appendingPathComponent("requirements.txt"), encoding: .utf8)
        #expect(file == "tinypkg==0.1 --hash=sha256:\(good.pins![0].sha256)\n")

        let other = directory.url.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let tampered = try PackageIndex.buildWheel("tinypkg", version: "0.1", value: "666", into: other)
        let helper = try PackageIndex.buildWheel("helperpkg", version: "1.0", value: "1", into: wheels)
        var pinnedElsewhere = good
        pinnedElsewhere.pins?.append(
            RequirementPin(name: "helperpkg", version: "1.0", sha256: ContentDigest(of: try Data(contentsOf: helper)).hex))
        #expect(pinnedElsewhere.key != good.key)
        try FileManager.default.removeItem(at: wheel)
        try FileManager.default.moveItem(at: tampered, to: wheel)
        do {
            try await environments.prepare(requirements: pinnedElsewhere, wheels: wheels)
            Issue.record("a wheel with another hash was installed")
        } catch let error as EnvironmentError {
            #expect("\(error)".prefix(300).contains("THESE PACKAGES DO NOT MATCH THE HASHES"), "\(error)")
        }
        #expect(!environments.isReady(for: pinnedElsewhere))
        #expect(environments.isReady(for: good))
        #expect(try Fixtures.run(python, ["-c", "import tinypkg; print(tinypkg.VALUE)"]) == "42\n")
    }

    @Test func aRequirementThatCannotBeInstalledSaysWhy() async throws {
        let wheels = directory.url.appendingPathComponent("empty-wheels")
        try FileManager.default.createDirectory(at: wheels, withIntermediateDirectories: true)
        do {
            try await environments.prepare(requirements: EnvironmentRequirements(requirements: ["no-such-package-xyz==1.0"]), wheels: wheels)
            Issue.record("installing a missing package succeeded")
        } catch let error as EnvironmentError {
            #expect("\(error)".contains("pip install"))
            // What reaches the hub: the health report keeps the first 300 characters.
            #expect("\(error)".prefix(300).contains("No matching distribution found for no-such-package-xyz==1.0"))
            #expect(!environments.isReady(for: EnvironmentRequirements(requirements: ["no-such-package-xyz==1.0"])))
        }
    }
}
