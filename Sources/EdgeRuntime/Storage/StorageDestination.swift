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
            // A device names its key file; it has no AWS environment of its own.
            let bucket = try s3Bucket {
                throw ObjectStoreError.invalidSettings("'\(url)' needs credentialsFile (AWS shared-credentials format)")
            }
            return StorageDestination(store: bucket.store, prefix: bucket.prefix)
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
