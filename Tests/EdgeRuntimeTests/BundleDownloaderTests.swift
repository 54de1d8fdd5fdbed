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

    /// A bundle offered by several hub instances comes from the first that answers: a
    /// port nobody listens on (an instance that died) is passed over, a 404 is not (the
    /// instance answered: the bundle is not there), and when none answers the error
    /// names each URL's failure.
    @Test func triesTheBundlesURLsInOrderPassingOverInstancesThatDoNotAnswer() async throws {
        let server = try BundleServer()
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "download")
        let dataDirectory = DataDirectory(directory.url)
        try dataDirectory.create()
        let bundle = try TestBundle.make(files: ["model.bin": Data((0..<20_000).map { UInt8($0 % 251) })], compress: false)
        try server.serve(bundle)
        let dead = "http://127.0.0.1:\(try Fixtures.freePort())"
        let path = "/v1/bundles/\(bundle.digest)"
        let downloader = BundleDownloader(dataDirectory: dataDirectory, baseURL: nil)

        try await downloader.download(BundleReference(digest: bundle.digest, size: bundle.size, urls: [dead + path, server.baseURL + path]))
        try BundleReader().verifyArchive(at: dataDirectory.bundle(bundle.digest), digest: bundle.digest, size: bundle.size)
        #expect(server.requests == ["\(path) -"])

        let absent = ContentDigest(of: Data("absent".utf8))
        let missing = BundleReference(
            digest: absent, size: 1, urls: ["\(server.baseURL)/v1/bundles/\(absent)", "\(dead)/v1/bundles/\(absent)"])
        await #expect(throws: DownloadError.httpStatus(url: "\(server.baseURL)/v1/bundles/\(absent)", status: 404)) {
            try await downloader.download(missing)
        }

        let otherDead = "http://127.0.0.1:\(try Fixtures.freePort())"
        let nowhere = BundleReference(digest: absent, size: 1, urls: ["\(dead)/v1/bundles/\(absent)", "\(otherDead)/v1/bundles/\(absent)"])
        await #expect {
            try await downloader.download(nowhere)
        } throws: { error in
            guard case DownloadError.noInstanceAnswered(let failures) = error else { return false }
            return failures.count == 2 && "\(error)".contains(dead) && "\(error)".contains(otherDead)
        }
    }
}
