import FleetCore
import Foundation

/// One record as a producer hands it to the buffer: everything but the sequence number and the
/// device id, which the buffer owns.
public struct TelemetryEntry: Equatable, Sendable {
    public var ts: Date
    public var module: String
    public var kind: TelemetryRecord.Kind
    public var data: JSONValue
    /// The Azure ML collection the record belongs to, `data` being its CloudEvent; nil for the
    /// device's own `TelemetryRecord` objects.
    public var collection: AzureMLCollection?

    public init(
        ts: Date = Date(), module: String, kind: TelemetryRecord.Kind, data: JSONValue, collection: AzureMLCollection? = nil
    ) {
        self.ts = ts
        self.module = module
        self.kind = kind
        self.data = data
        self.collection = collection
    }
}
