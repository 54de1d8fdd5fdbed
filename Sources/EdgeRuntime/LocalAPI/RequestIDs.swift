import Foundation
import Hummingbird

/// The request ids `azmlinfsrv` answers with, worked out the same way so tracing written
/// for Azure ML finds them: `x-request-id` is the client's or a new UUID; `x-ms-request-id`
/// (deprecated by Azure ML, still read by old clients) is the client's, else
/// `x-ms-client-request-id`, else the request id; `x-ms-client-request-id` is the client's,
/// else its `x-ms-request-id`.
struct RequestIDs {
    /// Longest id azmlinfsrv takes; a longer one gets 431.
    static let limit = 100

    /// The ids of the request being handled, set by `RequestIDMiddleware`, so the handlers
    /// record the `x-request-id` the caller gets (telemetry's `xrequestid`).
    @TaskLocal static var current: RequestIDs?

    var requestID: String
    var legacyRequestID: String
    var clientRequestID: String

    /// The ids of a request, or the 431 message azmlinfsrv gives for one that is too long.
    static func of(_ headers: HTTPFields) -> Result<RequestIDs, TooLong> {
        let requestID = headers[Self.requestID] ?? UUID().uuidString.lowercased()
        guard requestID.count <= limit else {
            return .failure(TooLong(message: "x-request-id must not exceed \(limit) characters"))
        }
        var legacy = headers[Self.legacyRequestID] ?? ""
        var client = headers[Self.clientRequestID] ?? ""
        if legacy.isEmpty {
            legacy = client.isEmpty ? requestID : client
        } else if client.isEmpty {
            client = legacy
        }
        guard legacy.count <= limit, client.count <= limit else {
            return .failure(
                TooLong(message: "x-ms-request-id and x-ms-client-request-id must not exceed \(limit) characters"))
        }
        return .success(RequestIDs(requestID: requestID, legacyRequestID: legacy, clientRequestID: client))
    }

    /// The headers to answer with.
    var responseHeaders: HTTPFields {
        var fields = HTTPFields()
        fields[Self.requestID] = requestID
        fields[Self.legacyRequestID] = legacyRequestID
        if !clientRequestID.isEmpty { fields[Self.clientRequestID] = clientRequestID }
        return fields
    }

    /// An id longer than `limit`; `message` is azmlinfsrv's.
    struct TooLong: Error {
        var message: String
    }

    private typealias FieldName = HTTPFields.Element.Name
    private static let requestID = FieldName("x-request-id")!
    private static let legacyRequestID = FieldName("x-ms-request-id")!
    private static let clientRequestID = FieldName("x-ms-client-request-id")!
}

/// Answers every request with its `RequestIDs`, or 431 for an id that is too long, as
/// azmlinfsrv does; the handlers find the ids in `RequestIDs.current`.
struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        switch RequestIDs.of(request.headers) {
        case .success(let ids):
            var response = try await RequestIDs.$current.withValue(ids) { try await next(request, context) }
            response.headers.append(contentsOf: ids.responseHeaders)
            return response
        case .failure(let tooLong):
            // The module's name, in `/v1/modules/{name}/…`.
            let path = request.uri.path.split(separator: "/")
            let module = path.count > 2 && path[1] == "modules" ? String(path[2]) : ""
            return Response(
                status: .requestHeaderFieldsTooLarge, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: ScoringErrorBody(error: tooLong.message, module: module).json)))
        }
    }
}
