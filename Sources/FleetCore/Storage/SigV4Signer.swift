import Crypto
import Foundation

/// AWS Signature Version 4 (header form), written out so that each step (canonical request, string to
/// sign, signature) can be checked against AWS's published test suite.
///
/// Paths are encoded once, segment by segment, the way S3 expects (S3 does not double-encode); query keys
/// and values are encoded with RFC 3986's unreserved set and sorted; header names are lowercased, values
/// trimmed with inner runs of spaces collapsed, and repeated headers joined with commas in their order.
public struct SigV4Signer: Sendable {
    /// The part of an HTTP request that the signature covers.
    public struct Request: Sendable {
        public var method: String
        /// The unencoded path, e.g. `/bucket/prefix/key.jsonl.gz`.
        public var path: String
        public var query: [(name: String, value: String)]
        /// Every header to sign, including `Host` and `X-Amz-Date`.
        public var headers: [(name: String, value: String)]
        /// Hex SHA-256 of the body.
        public var payloadHash: String

        public init(
            method: String, path: String, query: [(name: String, value: String)] = [],
            headers: [(name: String, value: String)], payloadHash: String
        ) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    public var credentials: AWSCredentials
    public var region: String
    public var service: String

    public init(credentials: AWSCredentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// `20150830T123600Z`, the form `X-Amz-Date` carries.
    public static func amzDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    /// Hex SHA-256 of `data`, for `x-amz-content-sha256` and the payload line.
    public static func sha256Hex(_ data: some DataProtocol) -> String {
        SHA256.hash(data: data).hexString
    }

    /// The payload hash of a request without a body (GET, HEAD).
    public static let emptyPayloadHash = sha256Hex(Data())

    public func signedHeaders(_ request: Request) -> String {
        canonicalHeaderList(request).map(\.name).joined(separator: ";")
    }

    public func canonicalRequest(_ request: Request) -> String {
        let headers = canonicalHeaderList(request)
        let encodedQuery: [(name: String, value: String)] = request.query.map { item in
            (Self.encode(item.name, keepSlash: false), Self.encode(item.value, keepSlash: false))
        }
        let sortedQuery = encodedQuery.sorted { left, right in
            left.name == right.name ? left.value < right.value : left.name < right.name
        }
        let query = sortedQuery.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
        return [
            request.method,
            Self.encode(request.path.isEmpty ? "/" : request.path, keepSlash: true),
            query,
            headers.map { "\($0.name):\($0.value)\n" }.joined(),
            signedHeaders(request),
            request.payloadHash,
        ].joined(separator: "\n")
    }

    /// `yyyyMMdd/region/service/aws4_request`.
    public func scope(amzDate: String) -> String {
        "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
    }

    public func stringToSign(canonicalRequest: String, amzDate: String) -> String {
        [
            "AWS4-HMAC-SHA256", amzDate, scope(amzDate: amzDate), Self.sha256Hex(Data(canonicalRequest.utf8)),
        ].joined(separator: "\n")
    }

    public func signature(stringToSign: String, amzDate: String) -> String {
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [String(amzDate.prefix(8)), region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return Data(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key)).hexString
    }

    /// The `Authorization` header value for `request`, whose `X-Amz-Date` header must be `amzDate`.
    public func authorization(_ request: Request, amzDate: String) -> String {
        let toSign = stringToSign(canonicalRequest: canonicalRequest(request), amzDate: amzDate)
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope(amzDate: amzDate)), "
            + "SignedHeaders=\(signedHeaders(request)), Signature=\(signature(stringToSign: toSign, amzDate: amzDate))"
    }

    private func canonicalHeaderList(_ request: Request) -> [(name: String, value: String)] {
        var merged: [String: [String]] = [:]
        for header in request.headers {
            let value = header.value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[header.name.lowercased(), default: []].append(value)
        }
        return merged.keys.sorted().map { ($0, merged[$0]!.joined(separator: ",")) }
    }

    private static let unreserved = Set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    /// Percent-encodes everything but RFC 3986's unreserved characters (and `/` in paths).
    static func encode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
