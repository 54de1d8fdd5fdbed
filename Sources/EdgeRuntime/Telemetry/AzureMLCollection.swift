/// One of Azure ML's data collections (`telemetry.format: azureml`, docs/telemetry.md): its
/// records are Azure ML data-collector CloudEvents, and they travel in objects of their own,
/// one collection of one module per object, under the folders Azure ML's monitoring reads.
public enum AzureMLCollection: String, Sendable, CaseIterable {
    case modelInputs = "model_inputs"
    case modelOutputs = "model_outputs"

    /// The CloudEvent `type` of its records.
    public var eventType: String { "azureml.inference.\(rawValue)" }
}
