import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

@Suite struct BundleDownloaderTests {
    @Test func resumesAPartialDownloadWithRange() async throws {
        let server = try BundleServer()
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "download")
        let dataDirectory = DataDirectory(directory.url)
        try dataDirectory.create()
        let bundle = try TestBundle.make(files: ["model.bin": Data((0..<50_000).map { UInt8($0 % 251) })], compress: false)
        try server.serve(bundle)
        let half = bundle.size / 2
        try bundle.data.prefix(half).write(to: dataDirectory.partialBundle(bundle.digest))

        let downloader = BundleDownloader(dataDirectory: dataDirectory, baseURL: URL(string: server.baseURL))
        try await downloader.download(bundle.reference(baseURL: server.baseURL))

        #expect(server.requests == ["/v1/bundles/\(bundle.digest) bytes=\(half)-"])
        let cached = dataDirectory.bundle(bundle.digest)
        try BundleReader().verifyArchive(at: cached, digest: bundle.digest, size: bundle.size)
        #expect(!FileManager.default.fileExists(atPath: dataDirectory.partialBundle(bundle.digest).path))

        // A cached bundle is not fetched again.
        try await downloader.download(bundle.reference(baseURL: server.baseURL))
        #expect(server.requests.count == 1)
    }

    @Test func relativeURLsUseTheHubBaseURLAndMissingBundlesReport404() async throws {
        let server = try BundleServer()
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "download")
        let dataDirectory = DataDirectory(directory.url)
        try dataDirectory.create()
        let downloader = BundleDownloader(dataDirectory: dataDirectory, baseURL: URL(string: server.baseURL))
        let absent = BundleReference(digest: ContentDigest(of: Data("x".utf8)), size: 1, url: "/v1/bundles/absent")
        await #expect(throws: DownloadError.httpStatus(url: "\(server.baseURL)/v1/bundles/absent", status: 404)) {
            try await downloader.download(absent)
        }
    }
}
