import Foundation

/// What the buffer holds and what became of the rest: the figures a health report or `status` shows.
public struct TelemetryBufferStats: Codable, Equatable, Sendable {
    /// Records waiting for upload.
    public var buffered: Int
    /// Payload bytes (module name + JSON data) waiting for upload.
    public var bufferedBytes: Int
    /// Timestamp of the oldest waiting record, nil when the buffer is empty.
    public var oldest: Date?
    /// The last sequence number handed out; the next record gets `lastSeq + 1`.
    public var lastSeq: Int64
    /// Records the store acknowledged and the buffer deleted, since the buffer was created.
    public var uploaded: Int64
    /// Records dropped because the buffer was full (oldest first).
    public var droppedFull: Int64
    /// Records dropped because they waited longer than the time-to-live.
    public var droppedExpired: Int64
    /// Records refused because the disk was full (`disk-full`), posted or made by the runtime.
    public var refusedDiskFull: Int64
    /// Whether the buffer refuses records now, until space returns.
    public var diskFull: Bool

    /// The refused records by reason, as health reports and `edge-runtime status` show them;
    /// empty when none was refused.
    public var refused: [String: Int] { refusedDiskFull > 0 ? ["disk-full": Int(refusedDiskFull)] : [:] }

    /// Seconds the oldest waiting record has been waiting at `now`, nil when the buffer is empty.
    public func oldestAge(now: Date = Date()) -> TimeInterval? {
        oldest.map { now.timeIntervalSince($0) }
    }
}
