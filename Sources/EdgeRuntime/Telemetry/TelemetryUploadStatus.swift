import Foundation

/// What the uploader has done and whether it is stuck: the figures `status` and health reports show.
public struct TelemetryUploadStatus: Codable, Equatable, Sendable {
    /// Objects the store acknowledged since the uploader started.
    public var objectsUploaded = 0
    /// Records in those objects.
    public var recordsUploaded = 0
    /// gzip bytes sent, and the JSON-lines bytes they hold (their ratio is the compression ratio).
    public var compressedBytes = 0
    public var uncompressedBytes = 0
    /// The key of the last object the store acknowledged.
    public var lastObjectKey: String?
    public var lastSuccess: Date?
    /// The last failure, readable (wrong secret, missing bucket, unreachable endpoint…); nil after a success.
    public var lastError: String?
    /// Failures since the last success; drives the back-off.
    public var consecutiveFailures = 0
    /// When the next attempt is due after a failure.
    public var nextAttempt: Date?

    public init() {}
}
