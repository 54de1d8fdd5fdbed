import FleetCore
import Foundation

extension StorageSettings {
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
                credentials: credentials, client: EdgeHTTPClient(trust: caFile.map { .systemAnd(caFile: $0) } ?? .system))
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
