import Foundation

/// Why an object could not be stored or read; each message says what to fix.
public enum ObjectStoreError: Error, CustomStringConvertible, Equatable {
    /// The storage settings are not usable (bad URL, missing endpoint…).
    case invalidSettings(String)
    /// The shared-credentials file is missing, unreadable or lacks the profile's keys.
    case credentials(path: String, reason: String)
    /// The store rejected the access key or the signature: the key id or the secret is wrong.
    case accessDenied(code: String, message: String, location: String)
    /// The bucket does not exist on the endpoint.
    case noSuchBucket(bucket: String, location: String)
    /// The store answered with another S3 error.
    case rejected(status: Int, code: String, message: String, key: String)
    /// The endpoint could not be reached (refused, timed out, DNS…).
    case unreachable(location: String, reason: String)
    /// Writing into the local folder failed.
    case fileSystem(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidSettings(let reason):
            "storage settings: \(reason)"
        case .credentials(let path, let reason):
            "storage credentials file '\(path)': \(reason)"
        case .accessDenied(let code, let message, let location):
            "\(location) refused the credentials (\(code): \(message)); check aws_access_key_id and aws_secret_access_key in the credentials file"
        case .noSuchBucket(let bucket, let location):
            "bucket '\(bucket)' does not exist at \(location); create it or fix the storage URL"
        case .rejected(let status, let code, let message, let key):
            "storing '\(key)' failed with HTTP \(status) \(code): \(message)"
        case .unreachable(let location, let reason):
            "cannot reach \(location): \(reason); check the endpoint URL and that the store is up"
        case .fileSystem(let path, let reason):
            "cannot write '\(path)': \(reason)"
        }
    }
}
