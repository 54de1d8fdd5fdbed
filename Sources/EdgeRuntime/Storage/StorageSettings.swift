import Foundation

/// Where a device's telemetry goes (DESIGN §8), as `fleethub device add --storage …` writes it into the
/// device config. The secret lives in `credentialsFile` (AWS shared-credentials format), never here.
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

    public init(
        url: String, endpoint: String? = nil, region: String? = nil, credentialsFile: String? = nil,
        profile: String? = nil, pathStyle: Bool? = nil
    ) {
        self.url = url
        self.endpoint = endpoint
        self.region = region
        self.credentialsFile = credentialsFile
        self.profile = profile
        self.pathStyle = pathStyle
    }

    /// Builds the store and the key prefix these settings describe; reads the credentials file.
    public func destination() throws -> StorageDestination {
        guard let parsed = URLComponents(string: url), let scheme = parsed.scheme?.lowercased() else {
            throw ObjectStoreError.invalidSettings("'\(url)' is not a URL; use s3://BUCKET/PREFIX or file:///folder")
        }
        switch scheme {
        case "file":
            guard parsed.path.hasPrefix("/") else {
                throw ObjectStoreError.invalidSettings("'\(url)' needs an absolute folder, e.g. file:///var/lib/edge/telemetry")
            }
            return StorageDestination(store: FileObjectStore(root: URL(fileURLWithPath: parsed.path)), prefix: "")
        case "s3":
            guard let bucket = parsed.host, !bucket.isEmpty else {
                throw ObjectStoreError.invalidSettings("'\(url)' names no bucket; use s3://BUCKET/PREFIX")
            }
            guard let credentialsFile else {
                throw ObjectStoreError.invalidSettings("'\(url)' needs credentialsFile (AWS shared-credentials format)")
            }
            let region = region ?? "us-east-1"
            let endpointText = endpoint ?? "https://s3.\(region).amazonaws.com"
            guard let endpointURL = URL(string: endpointText), endpointURL.host != nil else {
                throw ObjectStoreError.invalidSettings("endpoint '\(endpointText)' is not a URL like http://127.0.0.1:8333")
            }
            let credentials = try AWSCredentials.load(fromFile: credentialsFile, profile: profile ?? "default")
            let store = S3ObjectStore(
                endpoint: endpointURL, region: region, bucket: bucket, pathStyle: pathStyle ?? (endpoint != nil),
                credentials: credentials)
            return StorageDestination(store: store, prefix: parsed.path.trimmingCharacters(in: CharacterSet(charactersIn: "/")))
        default:
            throw ObjectStoreError.invalidSettings("'\(url)' has scheme '\(scheme)'; use s3:// or file://")
        }
    }
}

/// A store and the key prefix under which a device's objects go.
public struct StorageDestination: Sendable {
    public var store: any ObjectStore
    public var prefix: String
}
