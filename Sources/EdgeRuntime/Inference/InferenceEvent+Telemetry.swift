import FleetCore
import Foundation

extension InferenceEvent {
    /// The `inference` telemetry record of this request: `{"bundle", "latencyMs",
    /// "status"}` plus `"input"` and `"output"` when asked for, each as JSON when it
    /// parses and as a string otherwise.
    public func telemetryEntry(bundle: ContentDigest, input withInput: Bool, output withOutput: Bool) -> TelemetryEntry {
        var data: [String: JSONValue] = [
            "bundle": .string(bundle.description),
            "latencyMs": .number(Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15),
            "status": .number(Double(status)),
        ]
        if withInput { data["input"] = Self.json(input) }
        if withOutput { data["output"] = Self.json(output) }
        return TelemetryEntry(module: module, kind: .inference, data: .object(data))
    }

    private static func json(_ text: String) -> JSONValue {
        (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .string(text)
    }
}
