import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// `fleethub serve` over HTTPS, as an operator sets it up with the real executable,
/// checked with a real client (Python's `ssl` and `urllib`): the hub CA's certificate for
/// the public URL's host, an operator's own certificate, and an `http://` public URL
/// only when explicitly insecure.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "openssl")))
struct HTTPSServeTests {
    static let fleethub = Fixtures.builtExecutable("fleethub")
    static let python = ProcessInfo.processInfo.environment["FLEET_PYTHON"] ?? Fixtures.which("python3") ?? "python3"

    /// `GET url` with `token`, trusting only `caFile` (the system's store when nil):
    /// the status, or `refused: REASON` when the certificate does not verify.
    static func get(_ url: String, caFile: String?, token: String) throws -> String {
        try Fixtures.run(python, [
            "-c",
            """
            import ssl, sys, urllib.error, urllib.request
            url, cafile, token = sys.argv[1:4]
            context = ssl.create_default_context(cafile=cafile or None)
            request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
            try:
                with urllib.request.urlopen(request, context=context, timeout=10) as answer:
                    print(answer.status)
            except urllib.error.URLError as error:
                print("refused:", error.reason)
            """,
            url, caFile ?? "", token,
        ]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A workspace made by `fleethub init ARGUMENTS`, served by `fleethub serve`.
    final class ServedHub: Sendable {
        let directory: TemporaryDirectory
        let workspace: String
        let port: Int
        let server: ChildProcess

        init(directory: TemporaryDirectory, port: Int, initArguments: [String]) async throws {
            self.directory = directory
            self.port = port
            workspace = directory.file("hub")
            _ = try Fixtures.run(HTTPSServeTests.fleethub, try HubTestDatabase.arguments(["init"] + initArguments) + ["--workspace", workspace])
            server = try ChildProcess(
                HTTPSServeTests.fleethub, ["serve", "--http", "127.0.0.1:\(port)", "--workspace", workspace],
                outputPath: directory.file("serve.log"))
            guard await eventually(timeout: .seconds(10), { Fixtures.isListening(port: port) }) else {
                server.stop()
                throw FixtureError.didNotStart("fleethub serve", log: (try? String(contentsOfFile: directory.file("serve.log"), encoding: .utf8)) ?? "")
            }
        }

        func hub(_ arguments: String...) throws -> String {
            try Fixtures.run(HTTPSServeTests.fleethub, try HubTestDatabase.arguments(arguments) + ["--workspace", workspace])
        }

        var viewerToken: String {
            get throws {
                try hub("access", "show").split(separator: "\n").first { $0.hasPrefix("viewer token: ") }
                    .map { String($0.dropFirst("viewer token: ".count)) } ?? ""
            }
        }

        func stop() { server.stop() }
    }

    @Test func anHTTPPublicURLIsRefusedUnlessExplicitlyInsecure() throws {
        let directory = try TemporaryDirectory(prefix: "https-refused")
        let workspace = directory.file("hub")
        do {
            _ = try Fixtures.run(Self.fleethub, try HubTestDatabase.arguments(["init", "--public-url", "http://127.0.0.1:8080"]) + ["--workspace", workspace])
            Issue.record("init accepted an http:// public URL without --insecure-http")
        } catch let FixtureError.commandFailed(_, _, stderr) {
            #expect(stderr.contains("refusing the http:// public URL http://127.0.0.1:8080"), "\(stderr)")
            #expect(stderr.contains("--insecure-http"), "\(stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(workspace)/config.json"))

        _ = try Fixtures.run(
            Self.fleethub, try HubTestDatabase.arguments(["init", "--public-url", "http://127.0.0.1:8080", "--insecure-http"]) + ["--workspace", workspace])
        #expect(try Fixtures.run(Self.fleethub, ["config", "show", "--workspace", workspace]).contains("insecure-http: true"))
        // Taking the permission back while the URL is http:// is refused too.
        #expect(throws: FixtureError.self) {
            try Fixtures.run(Self.fleethub, ["config", "set", "insecure-http", "false", "--workspace", workspace])
        }
    }

    @Test func serveAnswersWithTheHubCAsCertificateForThePublicURLsHost() async throws {
        let directory = try TemporaryDirectory(prefix: "https-hub-ca")
        let port = try Fixtures.freePort()
        let hub = try await ServedHub(
            directory: directory, port: port, initArguments: ["--public-url", "https://127.0.0.1:\(port)"])
        defer { hub.stop() }
        let token = try hub.viewerToken
        let caFile = "\(hub.workspace)/ca/ca.crt"

        #expect(try Self.get("https://127.0.0.1:\(port)/v1/models", caFile: caFile, token: token) == "200")
        // A loopback host also gets the other loopback name.
        #expect(try Self.get("https://localhost:\(port)/v1/models", caFile: caFile, token: token) == "200")
        let untrusted = try Self.get("https://127.0.0.1:\(port)/v1/models", caFile: nil, token: token)
        #expect(untrusted.contains("CERTIFICATE_VERIFY_FAILED"), "\(untrusted)")

        let key = try FileManager.default.attributesOfItem(atPath: "\(hub.workspace)/ca/https.key")
        #expect((key[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let names = try Fixtures.run("openssl", ["x509", "-in", "\(hub.workspace)/ca/https.crt", "-noout", "-ext", "subjectAltName"])
        #expect(names.contains("IP Address:127.0.0.1") && names.contains("DNS:localhost"), "\(names)")
    }

    @Test func anOperatorsOwnCertificateIsServedAndDevicesTrustTheirCA() async throws {
        let directory = try TemporaryDirectory(prefix: "https-operator")
        func openssl(_ arguments: String...) throws { _ = try Fixtures.run("openssl", arguments) }
        let ca = directory.file("corp-ca")
        try openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(ca).key",
            "-out", "\(ca).crt", "-days", "30", "-subj", "/CN=corp CA")
        let certificate = directory.file("hub")
        try openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(certificate).key",
            "-out", "\(certificate).csr", "-subj", "/CN=127.0.0.1")
        try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".write(toFile: "\(certificate).ext", atomically: true, encoding: .utf8)
        try openssl(
            "x509", "-req", "-in", "\(certificate).csr", "-CA", "\(ca).crt", "-CAkey", "\(ca).key", "-CAcreateserial",
            "-out", "\(certificate).crt", "-days", "30", "-extfile", "\(certificate).ext")

        let port = try Fixtures.freePort()
        let hub = try await ServedHub(
            directory: directory, port: port,
            initArguments: [
                "--public-url", "https://127.0.0.1:\(port)", "--tls-cert", "\(certificate).crt", "--tls-key", "\(certificate).key",
                "--tls-ca", "\(ca).crt",
            ])
        defer { hub.stop() }
        let token = try hub.viewerToken

        #expect(try Self.get("https://127.0.0.1:\(port)/v1/models", caFile: "\(ca).crt", token: token) == "200")
        let hubCA = try Self.get("https://127.0.0.1:\(port)/v1/models", caFile: "\(hub.workspace)/ca/ca.crt", token: token)
        #expect(hubCA.contains("CERTIFICATE_VERIFY_FAILED"), "the hub CA's certificate was served: \(hubCA)")

        let configPath = directory.file("device/gw-001.yaml")
        // Registered without publishing (no broker runs here).
        _ = try DeviceEnrollment(workspace: Workspace.open(at: URL(fileURLWithPath: hub.workspace)))
            .add(id: "gw-001", tags: [:], configPath: configPath)
        let config = try DeviceConfig.load(from: configPath)
        #expect(config.hub.caFile == directory.file("device/hub-ca.crt"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.file("device/hub-ca.crt")))
            == Data(contentsOf: URL(fileURLWithPath: "\(ca).crt")))
    }

    @Test func theHubCAsCertificateFollowsThePublicURLsHost() throws {
        let hub = try HubFixture(broker: "mqtts://127.0.0.1:1", publicURL: "https://127.0.0.1:8080", insecure: false, insecureHTTP: false)
        let authority = try CertificateAuthority.create(in: hub.workspace.certificateAuthorityFolder, brokerHosts: ["127.0.0.1"])
        func names() throws -> String {
            try Fixtures.run("openssl", ["x509", "-in", authority.httpsCertificatePath, "-noout", "-ext", "subjectAltName"])
        }
        let https = try #require(try hub.workspace.https())
        #expect(https.certificatePath == authority.httpsCertificatePath && https.keyPath == authority.httpsKeyPath)
        #expect(https.trustedCAPath == authority.certificatePath)
        let first = try Data(contentsOf: URL(fileURLWithPath: authority.httpsCertificatePath))
        _ = try hub.workspace.https()
        #expect(try Data(contentsOf: URL(fileURLWithPath: authority.httpsCertificatePath)) == first, "a valid certificate was replaced")

        try hub.workspace.set("public-url", to: "https://hub.example:8443")
        _ = try hub.workspace.https()
        let renamed = try names()
        #expect(renamed.contains("DNS:hub.example") && !renamed.contains("127.0.0.1") && !renamed.contains("localhost"), "\(renamed)")

        // One that expires within the warning (and so the renewal) window raises an alert and is replaced.
        let soon = Date().addingTimeInterval(-(5 * 365 * 86_400) + 14.5 * 86_400)
        try authority.issue(.server(["hub.example"]), now: soon).write(
            certificateTo: authority.httpsCertificatePath, keyTo: authority.httpsKeyPath)
        let expiring = try Data(contentsOf: URL(fileURLWithPath: authority.httpsCertificatePath))
        let alerts = hub.workspace.httpsCertificateAlerts()
        #expect(alerts.map(\.kind) == [.httpsCertificateExpiring], "\(alerts)")
        #expect(alerts.first?.message.contains("expires in 15 days") == true, "\(alerts)")
        #expect(try hub.workspace.https() != nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: authority.httpsCertificatePath)) != expiring)
        #expect(hub.workspace.httpsCertificateAlerts().isEmpty)
    }
}
