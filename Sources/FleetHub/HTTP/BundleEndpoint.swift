import FleetCore
import Foundation
import Hummingbird

/// Serves bundles from the blob store by digest, with a strong `ETag` (the digest
/// itself: the bytes can never change), `Content-Length`, and single `Range` requests
/// so an interrupted download resumes where it stopped.
struct BundleEndpoint: Sendable {
    let blobs: BlobStore
    let fileIO = FileIO()

    func respond(to request: Request, context: BasicRequestContext, includeBody: Bool) async throws -> Response {
        let text = try context.parameters.require("digest")
        guard let digest = ContentDigest(text) else {
            throw HTTPError(.badRequest, message: "'\(text)' is not a digest sha256:<64 hex digits>")
        }
        let url = blobs.url(for: digest)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
            let size = (attributes[.size] as? NSNumber)?.intValue
        else { throw HTTPError(.notFound, message: "no bundle \(digest) on this hub") }

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
            let body = includeBody && size > 0
                ? try await fileIO.loadFile(path: url.path, context: context) : ResponseBody()
            return Response(status: .ok, headers: headers, body: body)
        case .partial(let bytes):
            headers[.contentLength] = "\(bytes.count)"
            headers[.contentRange] = "bytes \(bytes.lowerBound)-\(bytes.upperBound)/\(size)"
            let body = includeBody ? try await fileIO.loadFile(path: url.path, range: bytes, context: context) : ResponseBody()
            return Response(status: .partialContent, headers: headers, body: body)
        }
    }
}
