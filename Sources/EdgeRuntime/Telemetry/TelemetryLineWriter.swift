import FleetCore
import Foundation

/// Writes buffered rows as `TelemetryRecord` JSON lines, byte for byte what `FleetJSON.encode(record)`
/// gives (sorted keys, ISO 8601 seconds in UTC), without decoding and re-encoding each record's data:
/// the buffer stores the data already in FleetJSON form, so it is spliced in as is. This keeps the
/// upload from being bound by JSON coding on small devices. An Azure ML collection's row is its
/// CloudEvent line as stored.
struct TelemetryLineWriter {
    private(set) var lines = Data()
    private(set) var count = 0
    /// Every byte written, including lines already taken.
    private(set) var bytes = 0
    private let deviceIdJSON: Data
    private let encoder = FleetJSON.encoder()
    private var moduleJSON: [String: Data] = [:]
    private var timestampSecond: Int64?
    private var timestampJSON = Data()

    init(deviceId: String) throws {
        deviceIdJSON = try encoder.encode(deviceId)
    }

    /// Appends the line of one row; `data` is the FleetJSON encoding of the record's data.
    mutating func append(seq: Int64, ts: Double, module: String, kind: String, data: Data) throws {
        lines.append(contentsOf: #"{"data":"#.utf8)
        lines.append(data)
        lines.append(contentsOf: #","deviceId":"#.utf8)
        lines.append(deviceIdJSON)
        lines.append(contentsOf: #","kind":""#.utf8)
        lines.append(contentsOf: kind.utf8)
        lines.append(contentsOf: #"","module":"#.utf8)
        if let cached = moduleJSON[module] {
            lines.append(cached)
        } else {
            let encoded = try encoder.encode(module)
            moduleJSON[module] = encoded
            lines.append(encoded)
        }
        lines.append(contentsOf: #","seq":"#.utf8)
        lines.append(contentsOf: String(seq).utf8)
        lines.append(contentsOf: #","ts":"#.utf8)
        let second = Int64(ts.rounded(.down))
        if second != timestampSecond {
            timestampSecond = second
            timestampJSON = try encoder.encode(Date(timeIntervalSince1970: Double(second)))
        }
        lines.append(timestampJSON)
        lines.append(contentsOf: "}\n".utf8)
        count += 1
        bytes = taken + lines.count
    }

    /// Appends the line of an Azure ML collection's row: its CloudEvent, stored as FleetJSON already.
    mutating func appendEvent(data: Data) {
        lines.append(data)
        lines.append(UInt8(ascii: "\n"))
        count += 1
        bytes = taken + lines.count
    }

    /// Hands over the lines written since the last call, so a caller streaming them on keeps little.
    mutating func takeLines() -> Data {
        defer {
            taken += lines.count
            lines = Data()
        }
        return lines
    }

    private var taken = 0
}
