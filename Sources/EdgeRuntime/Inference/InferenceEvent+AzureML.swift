import FleetCore
import Foundation

extension InferenceEvent {
    /// The Azure ML data-collector records of this request (`telemetry.format: azureml`,
    /// docs/telemetry.md): a `model_inputs` CloudEvent holding the request body and a
    /// `model_outputs` one holding the answer, each when asked for, sharing one new
    /// `correlationid`. Only an answered request (status 200) has them: Azure ML's monitoring
    /// reads the collections as the model's data, where an error body has no place.
    public func azureMLEntries(
        deviceId: String, modelVersion: Int?, inputs: Bool, outputs: Bool, at time: Date
    ) -> [TelemetryEntry] {
        guard status == 200 else { return [] }
        let correlation = UUID().uuidString.lowercased()
        let parts: [(AzureMLCollection, String)] = (inputs ? [(.modelInputs, input)] : []) + (outputs ? [(.modelOutputs, output)] : [])
        return parts.map { collection, body in
            let data = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8))
            let size = body.utf8.count
            var event: [String: JSONValue] = [
                "specversion": .string("1.0"),
                "id": .string(UUID().uuidString.lowercased()),
                "source": .string("/devices/\(deviceId)/modules/\(module)"),
                "type": .string(collection.eventType),
                "datacontenttype": .string(data == nil ? "text/plain" : "application/json"),
                "time": .string(time.formatted(.iso8601)),
                "data": data ?? .string(body),
                "correlationid": .string(correlation),
                "modelversion": .string(modelVersion.map(String.init) ?? "default"),
                "collectdatatype": .string(Self.pythonType(of: data, body: body)),
                "agent": .string("edge-runtime/\(runtimeVersion)"),
                "contentrange": .string(size == 0 ? "bytes */0" : "bytes 0-\(size - 1)/\(size)"),
            ]
            if let requestID { event["xrequestid"] = .string(requestID) }
            return TelemetryEntry(ts: time, module: module, kind: .inference, data: .object(event), collection: collection)
        }
    }

    /// What Python's `json.loads` makes of the body (a body that is no JSON stays a `str`), in
    /// the `module.type` form Azure ML's `collectdatatype` takes.
    private static func pythonType(of data: JSONValue?, body: String) -> String {
        switch data {
        case .object: "builtins.dict"
        case .array: "builtins.list"
        case .string, nil: "builtins.str"
        case .number: body.contains(where: { ".eE".contains($0) }) ? "builtins.float" : "builtins.int"
        case .bool: "builtins.bool"
        case .null: "builtins.NoneType"
        }
    }
}
