import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Logging
import Testing

/// Who may use the hub's HTTP API, over real HTTP: viewers read, only the admin
/// writes, and bundles go only to registered devices holding their current token.
struct SecurityHTTPTests {
    func withServer(_ workspace: Workspace, _ body: (String) async throws -> Void) async throws {
        let ready = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "fleethub.http.security-test")
        logger.logLevel = .critical
        let server = HubServer(workspace: workspace, host: "127.0.0.1", port: 0, logger: logger)
        let task = Task { try await server.run { port in ready.continuation.yield(port) } }
        defer { task.cancel() }
        var iterator = ready.stream.makeAsyncIterator()
        let port = try #require(await iterator.next())
        try await body("http://127.0.0.1:\(port)")
        task.cancel()
        _ = try? await task.value
    }

    /// The status of `method url` sent with `token` (none when nil), as a bearer token
    /// or as the password of HTTP Basic authentication.
    func status(_ method: String, _ url: String, token: String?, basic: Bool = false) async throws -> Int {
        try await send(method, url, authorization: token.map {
            basic ? "Basic \(Data("viewer:\($0)".utf8).base64EncodedString())" : "Bearer \($0)"
        }).status
    }

    /// Sends `method url` with curl, which (unlike URLSession on Linux, which waits
    /// forever on a Basic challenge it has no credentials for) returns every 401 as is.
    func send(_ method: String, _ url: String, authorization: String? = nil) async throws -> (status: Int, headers: [String], body: Data) {
        let directory = try TemporaryDirectory(prefix: "http-answer")
        var arguments = ["-s", "-o", directory.file("body"), "-D", directory.file("headers"), "-X", method, url]
        if method == "HEAD" { arguments = ["-s", "-I", "-o", directory.file("body"), "-D", directory.file("headers"), url] }
        if method == "POST" { arguments += ["-d", "{}"] }
        if let authorization { arguments += ["-H", "Authorization: \(authorization)"] }
        // Awaited, not blocking: the server's handlers need the few cooperative threads.
        let curl = try ChildProcess("/usr/bin/curl", arguments, outputPath: directory.file("log"))
        let exit = try await curl.waitForExit()
        guard exit == 0 else { throw FixtureError.commandFailed("curl \(arguments)", status: exit, stderr: "") }
        let headers = try String(contentsOfFile: directory.file("headers"), encoding: .utf8)
            .split(separator: "\r\n").map(String.init)
        let status = Int(headers.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, headers, (try? Data(contentsOf: URL(fileURLWithPath: directory.file("body")))) ?? Data())
    }

    @Test func readsNeedTheViewerTokenAndWritesTheAdminToken() async throws {
        let fixture = try SecurityFixture()
        let access = try HTTPAccess.load(from: fixture.workspace)
        try await withServer(fixture.workspace) { base in
            #expect(try await status("GET", "\(base)/v1/devices", token: nil) == 401)
            #expect(try await status("GET", "\(base)/v1/devices", token: "wrong") == 403)
            #expect(try await status("GET", "\(base)/v1/devices", token: access.viewerToken) == 200)
            #expect(try await status("GET", "\(base)/v1/devices", token: access.adminToken) == 200)
            // A browser opening the dashboard sends the token as a Basic password.
            #expect(try await status("GET", "\(base)/v1/devices", token: access.viewerToken, basic: true) == 200)
            #expect(try await status("GET", "\(base)/v1/devices", token: "wrong", basic: true) == 403)
            // Every method other than GET/HEAD is a write, whatever the route.
            for method in ["POST", "PUT", "DELETE", "PATCH"] {
                #expect(try await status(method, "\(base)/v1/deployments", token: nil) == 401)
                #expect(try await status(method, "\(base)/v1/deployments", token: access.viewerToken) == 403)
                let admitted = try await status(method, "\(base)/v1/deployments", token: access.adminToken)
                #expect(admitted != 401 && admitted != 403)
            }
        }
        var open = access
        open.publicReads = true
        try open.save(in: fixture.workspace)
        try await withServer(fixture.workspace) { (base: String) async throws in
            #expect(try await status("GET", "\(base)/v1/models", token: nil) == 200)
            #expect(try await status("POST", "\(base)/v1/models", token: nil) == 401)
        }
    }

    @Test func bundlesNeedTheCurrentTokenOfARegisteredDevice() async throws {
        let fixture = try SecurityFixture()
        let module = try fixture.hub.packagedScorer()
        let deviceA = try fixture.enroll("gw-a")
        let deviceB = try fixture.enroll("gw-b")
        let tokenA = try #require(deviceA.hub.token)
        let tokenB = try #require(deviceB.hub.token)
        try fixture.hub.deploy("name: all\npriority: 1\ntarget: '*'\nmodules:\n  - name: iris\n    bundle: \(module.reference)\n")
        let access = try HTTPAccess.load(from: fixture.workspace)
        try await withServer(fixture.workspace) { base in
            let url = "\(base)/v1/bundles/\(module.digest)"
            #expect(try await status("GET", url, token: nil) == 401)
            #expect(try await status("HEAD", url, token: nil) == 401)
            #expect(try await status("GET", url, token: access.viewerToken) == 403)
            #expect(try await status("GET", url, token: "gw-a:forged") == 403)
            #expect(try await status("GET", url, token: "gw-b:" + tokenA.dropFirst("gw-a:".count)) == 403)
            #expect(try await status("GET", url, token: tokenA) == 200)
            #expect(try await status("GET", url, token: access.adminToken) == 200)

            try DeviceRevocation(workspace: fixture.workspace).revoke(id: "gw-a")
            #expect(try await status("GET", url, token: tokenA) == 403)
            #expect(try await status("GET", url, token: tokenB) == 200)
            // Added again under the same id, the device gets a new certificate and token.
            let again = try fixture.enroll("gw-a")
            #expect(again.hub.token != tokenA)
            #expect(try await status("GET", url, token: tokenA) == 403)
            #expect(try await status("GET", url, token: again.hub.token) == 200)
        }
    }

    @Test func theAccessFileIsPrivate() throws {
        let fixture = try SecurityFixture()
        _ = try HTTPAccess.load(from: fixture.workspace)
        let path = fixture.workspace.root.appendingPathComponent("http-access.json").path
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    /// The status, `WWW-Authenticate` header and JSON error of `method url` sent with `token`.
    func answer(_ method: String, _ url: String, token: String? = nil) async throws -> (status: Int, challenge: String?, error: String?) {
        let answer = try await send(method, url, authorization: token.map { "Bearer \($0)" })
        let challenge = answer.headers.first { $0.lowercased().hasPrefix("www-authenticate:") }
            .map { String($0.dropFirst("www-authenticate:".count)).trimmingCharacters(in: .whitespaces) }
        let error = (try? JSONSerialization.jsonObject(with: answer.body) as? [String: String])?["error"]
        return (answer.status, challenge, error)
    }

    /// A 401 says how to log in: Basic for the dashboard and the JSON API (a browser
    /// then asks for the token), Bearer for bundle downloads and writes.
    @Test func a401CarriesItsChallenge() async throws {
        let fixture = try SecurityFixture()
        try await withServer(fixture.workspace) { base in
            for path in ["/", "/v1/devices"] {
                let refused = try await answer("GET", base + path)
                #expect(refused.status == 401, "\(path)")
                #expect(refused.challenge == "Basic realm=\"fleethub\"", "\(path)")
                #expect(refused.error == "reading the hub API needs the viewer or admin token", "\(path)")
            }
            let bundle = try await answer("GET", "\(base)/v1/bundles/sha256:\(String(repeating: "0", count: 64))")
            #expect(bundle.status == 401 && bundle.challenge == "Bearer realm=\"fleethub\"")
            let write = try await answer("DELETE", "\(base)/v1/deployments/prod")
            #expect(write.status == 401 && write.challenge == "Bearer realm=\"fleethub\"")
            // A 403 asks for nothing: another login would not help.
            #expect(try await answer("GET", "\(base)/v1/devices", token: "wrong").challenge == nil)
        }
    }

    /// A device token downloads only the bundles (live and shadow) of its device's
    /// current and previous desired state.
    @Test func aDeviceDownloadsOnlyTheBundlesOfItsCurrentAndPreviousState() async throws {
        let fixture = try SecurityFixture()
        let v1 = try fixture.hub.packagedScorer(weights: "w1")
        let v2 = try fixture.hub.packagedScorer(weights: "w2")
        let candidate = try fixture.hub.packagedScorer(weights: "w3")
        let undeployed = try fixture.hub.packagedScorer(weights: "w4")
        let tokenA = try #require(try fixture.enroll("gw-a", tags: ["role": "a"]).hub.token)
        let tokenB = try #require(try fixture.enroll("gw-b", tags: ["role": "b"]).hub.token)
        func deploy(_ bundle: ModuleVersion, shadow: ModuleVersion? = nil, workers: Int = 1) throws {
            let shadowLine = shadow.map { "\n    shadow: {bundle: \($0.reference), sampleRate: 0.5}" } ?? ""
            try fixture.hub.deploy(
                "name: prod\npriority: 1\ntarget: role=a\nmodules:\n  - name: iris\n    bundle: \(bundle.reference)\n    workers: \(workers)\(shadowLine)\n")
        }
        try await withServer(fixture.workspace) { base in
            func status(_ bundle: ModuleVersion, _ token: String) async throws -> Int {
                try await answer("GET", "\(base)/v1/bundles/\(bundle.digest)", token: token).status
            }
            try deploy(v1)
            #expect(try await status(v1, tokenA) == 200)
            #expect(try await status(v2, tokenA) == 403)
            #expect(try await status(v1, tokenB) == 403)
            let refused = try await answer("GET", "\(base)/v1/bundles/\(undeployed.digest)", token: tokenA)
            #expect(refused.status == 403)
            #expect(
                refused.error
                    == "device gw-a may not download bundle \(undeployed.digest): it is in neither its current nor its previous desired state; deploy it to the device first")
            #expect(try await answer("HEAD", "\(base)/v1/bundles/\(undeployed.digest)", token: tokenA).status == 403)

            // The next version with a shadow: both, and the previous version for a rollback.
            try deploy(v2, shadow: candidate)
            #expect(try await status(v2, tokenA) == 200)
            #expect(try await status(candidate, tokenA) == 200)
            #expect(try await status(v1, tokenA) == 200)
            #expect(try await status(undeployed, tokenA) == 403)
            #expect(try await status(v2, tokenB) == 403)

            // One more change: v1 is now two states back.
            try deploy(v2, shadow: candidate, workers: 2)
            #expect(try await status(v1, tokenA) == 403)
            #expect(try await status(v2, tokenA) == 200)
            // The admin may download any bundle.
            let admin = try HTTPAccess.load(from: fixture.workspace).adminToken
            #expect(try await status(undeployed, admin) == 200)
        }
    }
}
