import Foundation

/// How much telemetry a device keeps while its store is unreachable (docs/contract.md). When a limit is hit the
/// buffer drops the oldest records and counts them, so a long outage costs old data, never the device's disk.
public struct TelemetryBufferLimits: Codable, Equatable, Sendable {
    /// Most records kept; the oldest go first when an append would exceed it.
    public var maxRecords: Int
    /// Most bytes of record payload (module name + JSON data) kept.
    public var maxBytes: Int
    /// Seconds a record may wait for upload before it is dropped as expired.
    public var ttlSeconds: Double

    public init(maxRecords: Int = 1_000_000, maxBytes: Int = 256 * 1024 * 1024, ttlSeconds: Double = 7 * 24 * 3600) {
        self.maxRecords = maxRecords
        self.maxBytes = maxBytes
        self.ttlSeconds = ttlSeconds
    }
}
