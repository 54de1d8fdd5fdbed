import Foundation
import NIOCore

/// A bucket on any S3-compatible endpoint (AWS, SeaweedFS, MinIO…), read and written with
/// signed requests (Signature Version 4, `SigV4Signer`): the device's telemetry uploads
/// and the hub's blob bucket use this one client. Path-style addressing
/// (`http://host/bucket/key`) suits self-hosted endpoints; virtual-hosted style
/// (`http://bucket.host/key`) suits AWS. Bodies are streamed both ways, so a model of
/// hundreds of megabytes never sits in memory.
public struct S3ObjectStore: Sendable {
    public let endpoint: URL
    public let bucket: String
    public let pathStyle: Bool
    private let signer: SigV4Signer
    private let client: FleetHTTPClient

    /// `client` decides which certificates the endpoint may present: the system's trust
    /// store, plus the storage settings' `caFile` when given.
    public init(
        endpoint: URL, region: String, bucket: String, pathStyle: Bool, credentials: AWSCredentials,
        client: FleetHTTPClient = FleetHTTPClient()
    ) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.pathStyle = pathStyle
        self.signer = SigV4Signer(credentials: credentials, region: region, service: "s3")
        self.client = client
    }

    public var location: String { "s3://\(bucket) at \(endpoint.absoluteString)" }

    /// Stores `data` under `key`, replacing what was there.
    public func put(key: String, data: Data, contentType: String) async throws {
        try await put(key: key, body: .data(data), payloadHash: SigV4Signer.sha256Hex(data), contentType: contentType)
    }

    /// Stores the file at `file` under `key`, streaming it; `sha256` is the hex SHA-256
    /// of its bytes, which the signature covers (the hub knows it: it is the blob's name).
    public func put(key: String, file: URL, size: Int, sha256: String, contentType: String) async throws {
        try await put(key: key, body: .file(file, size: size), payloadHash: sha256, contentType: contentType)
    }

    /// The size of the object `key`, or nil when there is none.
    public func size(of key: String) async throws -> Int? {
        let response = try await send("HEAD", key: key)
        if response.status == 404 { return nil }
        guard (200..<300).contains(response.status) else {
            throw error(status: response.status, body: response.body, key: key)
        }
        let length = response.headers.first { $0.name.lowercased() == "content-length" }?.value
        guard let size = length.flatMap({ Int($0) }) else {
            throw ObjectStoreError.rejected(status: response.status, code: "NoContentLength", message: "HEAD gave no Content-Length", key: key)
        }
        return size
    }

    /// Streams the object `key` (only `range`'s bytes when given) to `receive`, piece by
    /// piece as it arrives.
    public func get(key: String, range: ClosedRange<Int>? = nil, receive: (ByteBuffer) async throws -> Void) async throws {
        var (url, headers) = try signed("GET", key: key, payloadHash: SigV4Signer.emptyPayloadHash)
        if let range { headers.append((name: "Range", value: "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        var status = 0
        var errorBody = Data()
        do {
            try await client.stream("GET", url, headers: headers) { answer, _ in
                status = answer
            } receive: { chunk in
                if (200..<300).contains(status) {
                    try await receive(chunk)
                } else if errorBody.count < 64 << 10 {
                    errorBody.append(contentsOf: chunk.readableBytesView)
                }
                return true
            }
        } catch let failure as HTTPRequestError {
            throw ObjectStoreError.unreachable(location: location, reason: "\(failure)")
        }
        guard (200..<300).contains(status) else { throw error(status: status, body: errorBody, key: key) }
    }

    /// Lists at most one key: succeeds when the bucket exists and the credentials may read
    /// it, else says which of the endpoint, the bucket or the credentials is wrong.
    public func checkAccess() async throws {
        let query = [(name: "list-type", value: "2"), (name: "max-keys", value: "1")]
        let response = try await send("GET", key: "", query: query)
        guard (200..<300).contains(response.status) else {
            throw error(status: response.status, body: response.body, key: "")
        }
    }

    private func put(key: String, body: FleetHTTPClient.Body, payloadHash: String, contentType: String) async throws {
        let response = try await send(
            "PUT", key: key, body: body, payloadHash: payloadHash, extraHeaders: [("Content-Type", contentType)])
        guard (200..<300).contains(response.status) else {
            throw error(status: response.status, body: response.body, key: key)
        }
    }

    private func send(
        _ method: String, key: String, query: [(name: String, value: String)] = [], body: FleetHTTPClient.Body? = nil,
        payloadHash: String = SigV4Signer.emptyPayloadHash, extraHeaders: [(name: String, value: String)] = []
    ) async throws -> FleetHTTPClient.Response {
        let (url, headers) = try signed(method, key: key, query: query, payloadHash: payloadHash, extraHeaders: extraHeaders)
        do {
            return try await client.send(method, url, headers: headers, body: body, maxBody: 64 << 10)
        } catch let failure as HTTPRequestError {
            throw ObjectStoreError.unreachable(location: location, reason: "\(failure)")
        }
    }

    /// The URL of `key` (the bucket itself when empty) and the headers that sign a request for it.
    private func signed(
        _ method: String, key: String, query: [(name: String, value: String)] = [], payloadHash: String,
        extraHeaders: [(name: String, value: String)] = []
    ) throws -> (URL, [(name: String, value: String)]) {
        guard let scheme = endpoint.scheme, let endpointHost = endpoint.host else {
            throw ObjectStoreError.invalidSettings("endpoint '\(endpoint.absoluteString)' needs a scheme and a host")
        }
        let host = pathStyle ? endpointHost : "\(bucket).\(endpointHost)"
        let hostHeader = endpoint.port.map { "\(host):\($0)" } ?? host
        let path = pathStyle ? (key.isEmpty ? "/\(bucket)" : "/\(bucket)/\(key)") : "/\(key)"
        let queryText = query.map { "\(SigV4Signer.encode($0.name, keepSlash: false))=\(SigV4Signer.encode($0.value, keepSlash: false))" }
            .joined(separator: "&")
        let target = SigV4Signer.encode(path, keepSlash: true) + (queryText.isEmpty ? "" : "?\(queryText)")
        guard let url = URL(string: "\(scheme)://\(hostHeader)\(target)") else {
            throw ObjectStoreError.invalidSettings("cannot build a URL for key '\(key)' at \(location)")
        }
        let amzDate = SigV4Signer.amzDate(Date())
        let headers = [
            (name: "Host", value: hostHeader), (name: "X-Amz-Content-Sha256", value: payloadHash),
            (name: "X-Amz-Date", value: amzDate),
        ] + extraHeaders
        let request = SigV4Signer.Request(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash)
        return (
            url,
            headers.filter { $0.name != "Host" } + [(name: "Authorization", value: signer.authorization(request, amzDate: amzDate))]
        )
    }

    /// Turns an S3 error document (`<Error><Code>…</Code><Message>…</Message></Error>`) into
    /// a typed error; a HEAD answer has no document, only its status.
    private func error(status: Int, body: Data, key: String) -> ObjectStoreError {
        let text = String(decoding: body, as: UTF8.self)
        let code = Self.element("Code", in: text) ?? (status == 403 ? "AccessDenied" : "HTTP\(status)")
        let message = Self.element("Message", in: text) ?? (text.isEmpty ? "no details" : text.prefix(200).description)
        switch code {
        case "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied":
            return .accessDenied(code: code, message: message, location: location)
        case "NoSuchBucket":
            return .noSuchBucket(bucket: bucket, location: location)
        default:
            return .rejected(status: status, code: code, message: message, key: key)
        }
    }

    private static func element(_ name: String, in xml: String) -> String? {
        guard let start = xml.range(of: "<\(name)>"), let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex)
        else { return nil }
        return String(xml[start.upperBound..<end.lowerBound])
    }
}
