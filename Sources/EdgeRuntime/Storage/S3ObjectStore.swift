import Foundation

/// A bucket on any S3-compatible endpoint (AWS, SeaweedFS, MinIO…), written with signed PUTs
/// (Signature Version 4, `SigV4Signer`). Path-style addressing (`http://host/bucket/key`) suits
/// self-hosted endpoints; virtual-hosted style (`http://bucket.host/key`) suits AWS.
public struct S3ObjectStore: ObjectStore {
    public let endpoint: URL
    public let bucket: String
    public let pathStyle: Bool
    private let signer: SigV4Signer
    private let client: EdgeHTTPClient

    /// `client` decides which certificates the endpoint may present: the system's trust
    /// store, plus the storage settings' `caFile` when given.
    public init(
        endpoint: URL, region: String, bucket: String, pathStyle: Bool, credentials: AWSCredentials,
        client: EdgeHTTPClient = EdgeHTTPClient()
    ) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.pathStyle = pathStyle
        self.signer = SigV4Signer(credentials: credentials, region: region, service: "s3")
        self.client = client
    }

    public var location: String { "s3://\(bucket) at \(endpoint.absoluteString)" }

    public func put(key: String, data: Data, contentType: String) async throws {
        guard let scheme = endpoint.scheme, let endpointHost = endpoint.host else {
            throw ObjectStoreError.invalidSettings("endpoint '\(endpoint.absoluteString)' needs a scheme and a host")
        }
        let host = pathStyle ? endpointHost : "\(bucket).\(endpointHost)"
        let hostHeader = endpoint.port.map { "\(host):\($0)" } ?? host
        let path = pathStyle ? "/\(bucket)/\(key)" : "/\(key)"
        guard let url = URL(string: "\(scheme)://\(hostHeader)\(SigV4Signer.encode(path, keepSlash: true))") else {
            throw ObjectStoreError.invalidSettings("cannot build a URL for key '\(key)' at \(location)")
        }

        let amzDate = SigV4Signer.amzDate(Date())
        let payloadHash = SigV4Signer.sha256Hex(data)
        let headers = [
            (name: "Host", value: hostHeader), (name: "Content-Type", value: contentType),
            (name: "X-Amz-Content-Sha256", value: payloadHash), (name: "X-Amz-Date", value: amzDate),
        ]
        let signed = SigV4Signer.Request(method: "PUT", path: path, headers: headers, payloadHash: payloadHash)

        let response: EdgeHTTPClient.Response
        do {
            response = try await client.send(
                "PUT", url,
                headers: headers.filter { $0.name != "Host" }
                    + [("Authorization", signer.authorization(signed, amzDate: amzDate))],
                body: data, maxBody: 64 << 10)
        } catch {
            throw ObjectStoreError.unreachable(location: location, reason: "\(error)")
        }
        guard (200..<300).contains(response.status) else {
            throw error(status: response.status, body: response.body, key: key)
        }
    }

    /// Turns an S3 error document (`<Error><Code>…</Code><Message>…</Message></Error>`) into a typed error.
    private func error(status: Int, body: Data, key: String) -> ObjectStoreError {
        let text = String(decoding: body, as: UTF8.self)
        let code = Self.element("Code", in: text) ?? "HTTP\(status)"
        let message = Self.element("Message", in: text) ?? text.prefix(200).description
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
