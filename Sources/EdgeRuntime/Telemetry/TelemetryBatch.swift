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
    /// The UTC day of the batch's first record, as `yyyy/mm/dd`; for an Azure ML collection its
    /// hour, as `yyyy/mm/dd/hh`, and every record of the batch is of that hour.
    public var day: String
    /// How many records the object holds.
    public var count: Int
    /// The object: one `TelemetryRecord` JSON line per record in seq order, gzipped; for an Azure ML
    /// collection one CloudEvent JSON line per record, plain.
    public var object: Data
    /// The size of the object's content before gzip.
    public var uncompressedBytes: Int
    /// The Azure ML collection whose records the batch holds, all of `module`; nil for a batch of
    /// the device's own records (of any module).
    public var collection: AzureMLCollection?
    public var module: String?

    public init(
        name: String, firstSeq: Int64, lastSeq: Int64, day: String, count: Int, object: Data, uncompressedBytes: Int,
        collection: AzureMLCollection? = nil, module: String? = nil
    ) {
        self.name = name
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.day = day
        self.count = count
        self.object = object
        self.uncompressedBytes = uncompressedBytes
        self.collection = collection
        self.module = module
    }

    /// The records of the object, decoded.
    public func records() throws -> [TelemetryRecord] {
        try Gzip.decompress(object).split(separator: UInt8(ascii: "\n")).map {
            try FleetJSON.decode(TelemetryRecord.self, from: Data($0))
        }
    }

    /// `{prefix}/{deviceId}/{yyyy}/{mm}/{dd}/{name}.jsonl.gz` (docs/contract.md); for an Azure ML collection
    /// `{prefix}/modelDataCollector/{module}/{collection}/{yyyy}/{mm}/{dd}/{hh}/{deviceId}-{name}.jsonl`, the
    /// layout Azure ML's data collector writes (docs/telemetry.md). No leading slash when the prefix is empty.
    public func objectKey(prefix: String, deviceId: String) -> String {
        let key =
            if let collection, let module {
                "modelDataCollector/\(module)/\(collection.rawValue)/\(day)/\(deviceId)-\(name).jsonl"
            } else {
                "\(deviceId)/\(day)/\(name).jsonl.gz"
            }
        let trimmed = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        return trimmed.isEmpty ? key : "\(trimmed)/\(key)"
    }

    /// The object's media type: gzip, or JSON lines for an Azure ML collection.
    public var contentType: String { collection == nil ? "application/gzip" : "application/x-ndjson" }

    /// The UTC `yyyy/mm/dd/hh` of `date`.
    public static func hour(of date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return day(of: date) + String(format: "/%02d", calendar.component(.hour, from: date))
    }

    /// The UTC `yyyy/mm/dd` of `date`.
    public static func day(of date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d/%02d/%02d", parts.year!, parts.month!, parts.day!)
    }
}
