import FleetCore

/// The telemetry buffer stores the local API's custom records: `POST
/// /v1/modules/{name}/telemetry` answers 202 once the record is in SQLite.
extension TelemetryBuffer: LocalTelemetrySink {
    public func record(module: String, data: JSONValue) async throws {
        _ = try await append(TelemetryEntry(module: module, kind: .custom, data: data))
    }
}
