import Crypto
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

    @Test func installsVendoredWheelsWithoutAnIndexAndReusesTheEnvironment() async throws {
        let wheels = directory.url.appendingPathComponent("wheels")
        try FileManager.default.createDirectory(at: wheels, withIntermediateDirectories: true)
        try Self.wheel().write(to: wheels.appendingPathComponent("tinypkg-0.1-py3-none-any.whl"))

        let environment = try await environments.prepare(requirements: ["tinypkg==0.1"], wheels: wheels)
        #expect(environments.isReady(for: ["tinypkg==0.1"]))
        let output = try Fixtures.run(
            environment.appendingPathComponent("bin/python").path, ["-c", "import tinypkg; print(tinypkg.VALUE)"])
        #expect(output == "42\n")

        // Ready environments are reused as they are.
        let marker = environment.appendingPathComponent(".ready").path
        let created = try FileManager.default.attributesOfItem(atPath: marker)[.modificationDate] as? Date
        #expect(try await environments.prepare(requirements: ["tinypkg==0.1"], wheels: wheels).path == environment.path)
        #expect(try FileManager.default.attributesOfItem(atPath: marker)[.modificationDate] as? Date == created)
    }

    @Test func aRequirementThatCannotBeInstalledSaysWhy() async throws {
        let wheels = directory.url.appendingPathComponent("empty-wheels")
        try FileManager.default.createDirectory(at: wheels, withIntermediateDirectories: true)
        do {
            try await environments.prepare(requirements: ["no-such-package-xyz==1.0"], wheels: wheels)
            Issue.record("installing a missing package succeeded")
        } catch let error as EnvironmentError {
            #expect("\(error)".contains("pip install"))
            // What reaches the hub: the health report keeps the first 300 characters.
            #expect("\(error)".prefix(300).contains("No matching distribution found for no-such-package-xyz==1.0"))
            #expect(!environments.isReady(for: ["no-such-package-xyz==1.0"]))
        }
    }

    /// A minimal pure-Python wheel: `tinypkg` with `VALUE = 42`.
    static func wheel() throws -> Data {
        let files: [(String, Data)] = [
            ("tinypkg/__init__.py", Data("VALUE = 42\n".utf8)),
            ("tinypkg-0.1.dist-info/METADATA", Data("Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n".utf8)),
            ("tinypkg-0.1.dist-info/WHEEL", Data("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n".utf8)),
        ]
        var record = files.map { path, data in
            let hash = Data(SHA256.hash(data: data)).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            return "\(path),sha256=\(hash),\(data.count)"
        }
        record.append("tinypkg-0.1.dist-info/RECORD,,")
        let entries = files.map { TestBundle.RawEntry.file(path: $0.0, data: $0.1) }
            + [.file(path: "tinypkg-0.1.dist-info/RECORD", data: Data((record.joined(separator: "\n") + "\n").utf8))]
        return try TestBundle.zip(entries)
    }
}
