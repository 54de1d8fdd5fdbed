import Foundation

/// One line of telemetry in the owner's storage (docs/contract.md).
public struct TelemetryRecord: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case inference, custom, metric, shadow, drift
    }

    public var ts: Date
    public var deviceId: String
    public var module: String
    public var kind: Kind
    /// Grows by one per record on a device; names the object a batch lands in.
    public var seq: Int64
    public var data: JSONValue

    public init(ts: Date, deviceId: String, module: String, kind: Kind, seq: Int64, data: JSONValue) {
        self.ts = ts
        self.deviceId = deviceId
        self.module = module
        self.kind = kind
        self.seq = seq
        self.data = data
    }
}
