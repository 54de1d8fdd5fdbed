import Foundation

/// A Python package index on a free loopback port (`python3 -m http.server` over a
/// `simple/NAME/` folder per project, which pip reads as a simple index), serving
/// wheels the test builds, so packaging and environment tests never need the internet.
public final class PackageIndex: Sendable {
    public let folder: TemporaryDirectory
    public let port: Int
    private let server: ChildProcess

    /// The index's address, for `--index-url`.
    public var url: String { "http://127.0.0.1:\(port)/simple/" }

    public init() async throws {
        folder = try TemporaryDirectory(prefix: "package-index")
        try FileManager.default.createDirectory(atPath: folder.file("simple"), withIntermediateDirectories: true)
        port = try Fixtures.freePort()
        server = try ChildProcess(
            Self.python, ["-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", folder.path])
        let port = port
        guard await eventually(timeout: .seconds(10), { Fixtures.isListening(port: port) }) else {
            throw FixtureError.didNotStart("python3 -m http.server", log: "did not listen on 127.0.0.1:\(port)")
        }
    }

    /// Builds the wheel of project `name` at `version` (module `name` with `VALUE = value`)
    /// and serves it, replacing any artifact of that name and version; returns the served file.
    @discardableResult
    public func publish(_ name: String, version: String, value: String) throws -> URL {
        let project = folder.url.appendingPathComponent("simple/\(name)")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
        return try Self.buildWheel(name, version: version, value: value, into: project)
    }

    /// Writes the pure-Python wheel `name-version-py3-none-any.whl` into `folder`, with a
    /// correct RECORD, and returns it.
    @discardableResult
    public static func buildWheel(_ name: String, version: String, value: String, into folder: URL) throws -> URL {
        let program = #"""
            import base64, hashlib, sys, zipfile
            name, version, value, out = sys.argv[1:5]
            info = f"{name}-{version}.dist-info"
            files = {
                f"{name}/__init__.py": f"VALUE = {value}\n".encode(),
                f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
                f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: fleet-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            }
            digest = lambda data: base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record = [f"{path},sha256={digest(data)},{len(data)}" for path, data in files.items()] + [f"{info}/RECORD,,"]
            files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
            with zipfile.ZipFile(out, "w") as wheel:
                for path, data in files.items():
                    wheel.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data)
            """#
        let wheel = folder.appendingPathComponent("\(name)-\(version)-py3-none-any.whl")
        try Fixtures.run(python, ["-c", program, name, version, value, wheel.path])
        return wheel
    }

    private static var python: String { Fixtures.which("python3") ?? "python3" }
}
