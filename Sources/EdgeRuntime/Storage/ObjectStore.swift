import FleetCore
import Foundation

/// Somewhere the owner keeps telemetry objects: an S3-compatible bucket or a local folder.
/// `put` returns only once the store has acknowledged the whole object; writing the same key again
/// replaces the object, which is what makes re-uploading a batch after a crash harmless.
public protocol ObjectStore: Sendable {
    /// Where objects go, for status messages, e.g. `s3://telemetry/fleet at http://127.0.0.1:8333`.
    var location: String { get }

    func put(key: String, data: Data, contentType: String) async throws
}

/// A telemetry bucket (`storage.url: s3://…`).
extension S3ObjectStore: ObjectStore {}
