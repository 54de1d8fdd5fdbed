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
    /// Disk the buffer holds back in a file beside the database (`telemetry.sqlite-reserve`) and
    /// gives up when the disk fills, so uploads (which write their plan before they can delete
    /// records) still have room while new records are refused.
    public var reserveBytes: Int

    public init(
        maxRecords: Int = 1_000_000, maxBytes: Int = 256 * 1024 * 1024, ttlSeconds: Double = 7 * 24 * 3600,
        reserveBytes: Int = 8 * 1024 * 1024
    ) {
        self.maxRecords = maxRecords
        self.maxBytes = maxBytes
        self.ttlSeconds = ttlSeconds
        self.reserveBytes = reserveBytes
    }
}
