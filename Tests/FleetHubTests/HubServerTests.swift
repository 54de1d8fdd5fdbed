import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Logging
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `fleethub serve` on a free loopback port, queried over real HTTP.
struct HubServerTests {
    /// Starts the server on a free port, runs `body` with its base URL, and stops it.
    func withServer(_ hub: HubFixture, _ body: (String) async throws -> Void) async throws {
        let ready = AsyncStream<Int>.makeStream()
        // Stopping by cancellation makes the server log an error; tests do not need it.
        var logger = Logger(label: "fleethub.http.test")
        logger.logLevel = .critical
        let server = HubServer(workspace: hub.workspace, host: "127.0.0.1", port: 0, logger: logger)
        let task = Task { try await server.run { port in ready.continuation.yield(port) } }
        defer { task.cancel() }
        var iterator = ready.stream.makeAsyncIterator()
        let port = try #require(await iterator.next())
        try await body("http://127.0.0.1:\(port)")
        task.cancel()
        _ = try? await task.value
    }

    /// GETs `url` as the hub's admin (SecurityHTTPTests checks who else may).
    func get(_ hub: HubFixture, _ url: String, headers: [String: String] = [:]) async throws -> (Data, HTTPURLResponse) {
        var request = URLRequest(url: URL(string: url)!)
        request.setValue("Bearer \(try HTTPAccess.load(from: hub.workspace).adminToken)", forHTTPHeaderField: "Authorization")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return (data, try #require(response as? HTTPURLResponse))
    }

    @Test func bundleDownloadResumesWithRange() async throws {
        let hub = try HubFixture()
        let module = try hub.packagedScorer(weights: String(repeating: "w", count: 5000))
        let whole = try Data(contentsOf: hub.workspace.blobs.url(for: module.digest))
        try await withServer(hub) { base in
            let url = "\(base)/v1/bundles/\(module.digest)"
            let (full, fullResponse) = try await get(hub, url)
            #expect(fullResponse.statusCode == 200)
            #expect(full == whole)
            #expect(fullResponse.value(forHTTPHeaderField: "Content-Length") == "\(whole.count)")
            #expect(fullResponse.value(forHTTPHeaderField: "ETag") == "\"\(module.digest)\"")

            let (rest, partial) = try await get(hub, url, headers: ["Range": "bytes=100-"])
            #expect(partial.statusCode == 206)
            #expect(rest == whole.subdata(in: 100..<whole.count))
            #expect(partial.value(forHTTPHeaderField: "Content-Range") == "bytes 100-\(whole.count - 1)/\(whole.count)")
            #expect(partial.value(forHTTPHeaderField: "Content-Length") == "\(whole.count - 100)")

            let (_, cached) = try await get(hub, url, headers: ["If-None-Match": "\"\(module.digest)\""])
            #expect(cached.statusCode == 304)
            let (_, staleRange) = try await get(hub, url, headers: ["Range": "bytes=100-", "If-Range": "\"sha256:other\""])
            #expect(staleRange.statusCode == 200)

            let (_, beyond) = try await get(hub, url, headers: ["Range": "bytes=\(whole.count)-"])
            #expect(beyond.statusCode == 416)
            let (_, missing) = try await get(hub, "\(base)/v1/bundles/sha256:\(String(repeating: "0", count: 64))")
            #expect(missing.statusCode == 404)
        }
    }

    /// From a blob bucket the bundle is streamed, ranges passed on to the bucket: the same
    /// bytes and headers as from the folder, with this host's copy gone.
    @Test(.enabled(if: SeaweedFS.shouldRun), .timeLimit(.minutes(2)))
    func aBundleInABlobBucketIsServedWithRanges() async throws {
        let seaweed = try await SeaweedFS.start()
        defer { seaweed.stop() }
        try await seaweed.createBucket("blobs")
        let credentials = try TemporaryDirectory(prefix: "bucket-credentials")
        try seaweed.writeCredentialsFile(to: credentials.file("s3.ini"))
        let hub = try HubFixture(
            blobs: StorageSettings(url: "s3://blobs/hub", endpoint: seaweed.endpoint, credentialsFile: credentials.file("s3.ini")))
        let module = try hub.packagedScorer(weights: String(repeating: "w", count: 5000))
        let whole = try Data(contentsOf: hub.workspace.blobs.url(for: module.digest))
        try FileManager.default.removeItem(at: hub.workspace.blobs.url(for: module.digest))
        try await withServer(hub) { base in
            let url = "\(base)/v1/bundles/\(module.digest)"
            let (full, fullResponse) = try await get(hub, url)
            #expect(fullResponse.statusCode == 200)
            #expect(full == whole)
            #expect(fullResponse.value(forHTTPHeaderField: "ETag") == "\"\(module.digest)\"")

            let last = whole.count / 2
            let (middle, partial) = try await get(hub, url, headers: ["Range": "bytes=10-\(last)"])
            #expect(partial.statusCode == 206)
            #expect(middle == whole.subdata(in: 10..<(last + 1)))
            #expect(partial.value(forHTTPHeaderField: "Content-Range") == "bytes 10-\(last)/\(whole.count)")
            let (tail, suffix) = try await get(hub, url, headers: ["Range": "bytes=-10"])
            #expect(suffix.statusCode == 206 && tail == whole.suffix(10))
            let (_, beyond) = try await get(hub, url, headers: ["Range": "bytes=\(whole.count)-"])
            #expect(beyond.statusCode == 416)
            let (_, missing) = try await get(hub, "\(base)/v1/bundles/sha256:\(String(repeating: "0", count: 64))")
            #expect(missing.statusCode == 404)
        }
    }

    @Test func jsonAPIListsRegistryDevicesAndDeployments() async throws {
        let hub = try HubFixture()
        try hub.packagedScorer()
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1"])
        try hub.deploy("name: prod\npriority: 1\ntarget: site=plant-1\nmodules:\n  - name: iris\n    bundle: iris-scorer:1\n")
        try await withServer(hub) { base in
            let (models, _) = try await get(hub, "\(base)/v1/models")
            #expect(try FleetJSON.decode([ModelVersion].self, from: models).map(\.reference) == ["iris:1"])
            let (modules, _) = try await get(hub, "\(base)/v1/modules")
            #expect(try FleetJSON.decode([ModuleVersion].self, from: modules).map(\.reference) == ["iris-scorer:1"])
            let (devices, _) = try await get(hub, "\(base)/v1/devices")
            #expect(try FleetJSON.decode([Device].self, from: devices).map(\.id) == ["gw-1"])
            let (device, _) = try await get(hub, "\(base)/v1/devices/gw-1")
            #expect(try FleetJSON.decode(DeviceDetail.self, from: device).desired?.revision == 2)
            let (deployment, _) = try await get(hub, "\(base)/v1/deployments/prod")
            #expect(try FleetJSON.decode(DeploymentDetail.self, from: deployment).devices == ["gw-1"])
            let (error, notFound) = try await get(hub, "\(base)/v1/models/iris/7")
            #expect(notFound.statusCode == 404)
            #expect(String(decoding: error, as: UTF8.self).contains("no registered model iris:7"))
        }
    }
}
