import FleetCore
import Foundation

extension InferenceEvent {
    /// The `inference` telemetry record of this request: `{"input", "output",
    /// "latencyMs", "status"}`, with input and output as JSON when they parse and as
    /// strings otherwise. Pass it to `TelemetryBuffer.append` from `ScoringHost`'s hook.
    public var telemetryEntry: TelemetryEntry {
        TelemetryEntry(
            module: module, kind: .inference,
            data: .object([
                "input": Self.json(input),
                "output": Self.json(output),
                "latencyMs": .number(Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15),
                "status": .number(Double(status)),
            ]))
    }

    private static func json(_ text: String) -> JSONValue {
        (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .string(text)
    }
}
