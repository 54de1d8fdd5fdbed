import FleetCore
import Foundation
import Hummingbird

/// Serves bundles from the blob store by digest, with a strong `ETag` (the digest
/// itself: the bytes can never change), `Content-Length`, and single `Range` requests
/// so an interrupted download resumes where it stopped. From a blob bucket the bytes are
/// streamed as they come, the range passed on, so any instance serves any bundle without
/// holding it in memory or on disk.
struct BundleEndpoint: Sendable {
    let blobs: BlobStore
    let fileIO = FileIO()

    /// Where one bundle's bytes come from.
    private enum Source {
        case file(String)
        case bucket(BlobBucket)
    }

    func respond(to request: Request, context: BasicRequestContext, includeBody: Bool) async throws -> Response {
        let text = try context.parameters.require("digest")
        guard let digest = ContentDigest(text) else {
            throw HTTPError(.badRequest, message: "'\(text)' is not a digest sha256:<64 hex digits>")
        }
        let (source, size) = try await find(digest)

        let etag = "\"\(digest)\""
        var headers: HTTPFields = [.eTag: etag, .acceptRanges: "bytes", .contentType: "application/zip"]
        if let match = request.headers[.ifNoneMatch], match == etag || match == "*" {
            return Response(status: .notModified, headers: headers)
        }
        var range = ByteRange(header: request.headers[.range], size: size)
        if let ifRange = request.headers[.ifRange], ifRange != etag { range = .whole }

        switch range {
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(size)"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        case .whole:
            headers[.contentLength] = "\(size)"
            let body = includeBody && size > 0 ? try await self.body(source, digest: digest, range: nil, context: context) : ResponseBody()
            return Response(status: .ok, headers: headers, body: body)
        case .partial(let bytes):
            headers[.contentLength] = "\(bytes.count)"
            headers[.contentRange] = "bytes \(bytes.lowerBound)-\(bytes.upperBound)/\(size)"
            let body = includeBody ? try await self.body(source, digest: digest, range: bytes, context: context) : ResponseBody()
            return Response(status: .partialContent, headers: headers, body: body)
        }
    }

    /// Where the bundle `digest` is and its size: 404 when there is none, 502 when the
    /// bucket cannot be asked (a device then tries the next instance).
    private func find(_ digest: ContentDigest) async throws -> (Source, Int) {
        let bucket: BlobBucket?
        do {
            bucket = try blobs.bucket()
        } catch {
            throw HTTPError(.badGateway, message: "the hub's blob bucket is not usable: \(error)")
        }
        guard let bucket else {
            let path = blobs.url(for: digest).path
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                let size = (attributes[.size] as? NSNumber)?.intValue
            else { throw HTTPError(.notFound, message: "no bundle \(digest) on this hub") }
            return (.file(path), size)
        }
        let size: Int?
        do {
            size = try await bucket.size(of: digest)
        } catch {
            throw HTTPError(.badGateway, message: "cannot read bundle \(digest) from \(bucket.location): \(error)")
        }
        guard let size else { throw HTTPError(.notFound, message: "no bundle \(digest) in \(bucket.location)") }
        return (.bucket(bucket), size)
    }

    private func body(_ source: Source, digest: ContentDigest, range: ClosedRange<Int>?, context: BasicRequestContext) async throws -> ResponseBody {
        switch source {
        case .file(let path):
            if let range { return try await fileIO.loadFile(path: path, range: range, context: context) }
            return try await fileIO.loadFile(path: path, context: context)
        case .bucket(let bucket):
            return ResponseBody { writer in
                try await bucket.read(digest, range: range) { chunk in try await writer.write(chunk) }
                try await writer.finish(nil)
            }
        }
    }
}
