import FleetCore
import Foundation

/// A run of buffered records that becomes one object in the store. Everything about it (its records,
/// the compressed object, its name and day) is fixed when the batch is planned and persisted with it, so
/// a retry after a crash writes the same key with the same bytes, even if limits dropped records since.
public struct TelemetryBatch: Equatable, Sendable {
    /// `{bufferId}-{firstSeq}-{lastSeq}`: the buffer's identity keeps a re-created buffer, which starts
    /// again at seq 1, from overwriting the objects of the one before.
    public var name: String
    public var firstSeq: Int64
    public var lastSeq: Int64
    /// The UTC day of the batch's first record, as `yyyy/mm/dd`.
    public var day: String
    /// How many records the object holds.
    public var count: Int
    /// The object: one `TelemetryRecord` JSON line per record in seq order, gzipped.
    public var object: Data
    /// The size of the object's content before gzip.
    public var uncompressedBytes: Int

    public init(
        name: String, firstSeq: Int64, lastSeq: Int64, day: String, count: Int, object: Data, uncompressedBytes: Int
    ) {
        self.name = name
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.day = day
        self.count = count
        self.object = object
        self.uncompressedBytes = uncompressedBytes
    }

    /// The records of the object, decoded.
    public func records() throws -> [TelemetryRecord] {
        try Gzip.decompress(object).split(separator: UInt8(ascii: "\n")).map {
            try FleetJSON.decode(TelemetryRecord.self, from: Data($0))
        }
    }

    /// `{prefix}/{deviceId}/{yyyy}/{mm}/{dd}/{name}.jsonl.gz` (docs/contract.md); no leading slash when the
    /// prefix is empty.
    public func objectKey(prefix: String, deviceId: String) -> String {
        let key = "\(deviceId)/\(day)/\(name).jsonl.gz"
        let trimmed = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        return trimmed.isEmpty ? key : "\(trimmed)/\(key)"
    }

    /// The UTC `yyyy/mm/dd` of `date`.
    public static func day(of date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d/%02d/%02d", parts.year!, parts.month!, parts.day!)
    }
}
