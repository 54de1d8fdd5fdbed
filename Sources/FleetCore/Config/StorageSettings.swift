import Foundation

/// Where a device's telemetry goes (docs/contract.md), as `fleethub device add --storage …` writes it into the
/// device config (`storage:`); the runtime turns it into a store with `destination()`. The secret lives in `credentialsFile` (AWS shared-credentials format), never here.
public struct StorageSettings: Codable, Equatable, Sendable {
    /// `s3://BUCKET/PREFIX` or `file:///absolute/folder`.
    public var url: String
    /// The S3 endpoint, e.g. `http://127.0.0.1:8333`; AWS's regional endpoint when absent.
    public var endpoint: String?
    /// The signing region; `us-east-1` when absent.
    public var region: String?
    /// A file in the AWS shared-credentials format holding the access key pair.
    public var credentialsFile: String?
    /// The profile to read from `credentialsFile`; `default` when absent.
    public var profile: String?
    /// Path-style addressing (`endpoint/bucket/key`); defaults to true with a custom endpoint, false on AWS.
    public var pathStyle: Bool?
    /// A CA (PEM) an `https://` endpoint's certificate may be signed by, besides those of
    /// the system's trust store: a self-hosted endpoint with a private CA.
    public var caFile: String?

    public init(
        url: String, endpoint: String? = nil, region: String? = nil, credentialsFile: String? = nil,
        profile: String? = nil, pathStyle: Bool? = nil, caFile: String? = nil
    ) {
        self.caFile = caFile
        self.url = url
        self.endpoint = endpoint
        self.region = region
        self.credentialsFile = credentialsFile
        self.profile = profile
        self.pathStyle = pathStyle
    }
}

extension StorageSettings {
    /// The bucket an `s3://BUCKET/PREFIX` URL names on `endpoint` (AWS's regional one when
    /// absent), and the key prefix; the key pair comes from `credentialsFile`, else from
    /// `credentials` (the hub: `AWSCredentials.fromEnvironment`).
    public func s3Bucket(
        credentials: () throws -> AWSCredentials = { try AWSCredentials.fromEnvironment() }
    ) throws -> (store: S3ObjectStore, prefix: String) {
        guard let parsed = URLComponents(string: url), parsed.scheme?.lowercased() == "s3" else {
            throw ObjectStoreError.invalidSettings("'\(url)' is not an s3:// URL; use s3://BUCKET/PREFIX")
        }
        guard let bucket = parsed.host, !bucket.isEmpty else {
            throw ObjectStoreError.invalidSettings("'\(url)' names no bucket; use s3://BUCKET/PREFIX")
        }
        let region = region ?? "us-east-1"
        let endpointText = endpoint ?? "https://s3.\(region).amazonaws.com"
        guard let endpointURL = URL(string: endpointText), ["http", "https"].contains(endpointURL.scheme ?? ""),
            endpointURL.host?.isEmpty == false
        else {
            throw ObjectStoreError.invalidSettings("endpoint '\(endpointText)' is not a URL like http://127.0.0.1:8333")
        }
        let keys = try credentialsFile.map { try AWSCredentials.load(fromFile: $0, profile: profile ?? "default") } ?? credentials()
        let store = S3ObjectStore(
            endpoint: endpointURL, region: region, bucket: bucket, pathStyle: pathStyle ?? (endpoint != nil),
            credentials: keys, client: FleetHTTPClient(trust: caFile.map { .systemAnd(caFile: $0) } ?? .system))
        return (store, parsed.path.trimmingCharacters(in: CharacterSet(charactersIn: "/")))
    }
}
