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
