import FleetCore
import Foundation

/// A run of buffered records that becomes one object in the store. Its bounds and day are fixed when the
/// batch is first planned and persisted with it, so the object key stays the same across crashes.
public struct TelemetryBatch: Equatable, Sendable {
    public var firstSeq: Int64
    public var lastSeq: Int64
    /// The UTC day of the batch's first record, as `yyyy/mm/dd`.
    public var day: String
    /// How many records of the range are still in the buffer.
    public var count: Int
    /// Those records as JSON lines, one `TelemetryRecord` per line in seq order: the object's content
    /// before gzip.
    public var lines: Data

    public init(firstSeq: Int64, lastSeq: Int64, day: String, count: Int, lines: Data) {
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.day = day
        self.count = count
        self.lines = lines
    }

    /// The records of `lines`, decoded.
    public func records() throws -> [TelemetryRecord] {
        try lines.split(separator: UInt8(ascii: "\n")).map { try FleetJSON.decode(TelemetryRecord.self, from: Data($0)) }
    }

    /// `{prefix}/{deviceId}/{yyyy}/{mm}/{dd}/{firstSeq}-{lastSeq}.jsonl.gz` (docs/contract.md); no leading
    /// slash when the prefix is empty.
    public func objectKey(prefix: String, deviceId: String) -> String {
        let name = "\(deviceId)/\(day)/\(firstSeq)-\(lastSeq).jsonl.gz"
        let trimmed = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        return trimmed.isEmpty ? name : "\(trimmed)/\(name)"
    }

    /// The UTC `yyyy/mm/dd` of `date`.
    public static func day(of date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d/%02d/%02d", parts.year!, parts.month!, parts.day!)
    }
}
