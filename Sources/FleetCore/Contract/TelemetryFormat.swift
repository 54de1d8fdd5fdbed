/// How a scoring module's sampled requests reach the owner's storage (docs/telemetry.md): the
/// device's own records, or Azure ML's data-collection layout, so that an owner who
/// monitors models with Azure ML can point its tools at the bucket.
public enum TelemetryFormat: String, Codable, Sendable, CaseIterable {
    /// One `inference` record per request, in the device's gzip JSON-lines objects.
    case fleet
    /// A `model_inputs` and a `model_outputs` CloudEvent per request, sharing a correlation id,
    /// in plain JSON-lines objects laid out as Azure ML's data collector writes them.
    case azureml
}
