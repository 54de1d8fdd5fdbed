import FleetCore

/// Where `POST /v1/modules/{name}/telemetry` puts a custom record. The telemetry
/// buffer implements it; the API answers 202 only after `record` returned, so a
/// caller knows the record is stored.
public protocol LocalTelemetrySink: Sendable {
    /// Stores one custom telemetry record for `module`; throws when it could not.
    func record(module: String, data: JSONValue) async throws
}
