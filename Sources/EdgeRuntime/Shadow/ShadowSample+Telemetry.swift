import FleetCore
import Foundation

extension ShadowSample {
    /// The `shadow` telemetry record of this sample: `{"bundle", "liveBundle",
    /// "latencyMs", "status", "agreed"}`, `"differences"` (path → absolute difference)
    /// when there are numbers, `"error"` when the shadow failed, and `"live"` and
    /// `"shadow"` (each as JSON when it parses) when the module collects outputs.
    /// The input is not repeated: the request's `inference` record holds it.
    public func telemetryEntry(outputs withOutputs: Bool) -> TelemetryEntry {
        var data: [String: JSONValue] = [
            "bundle": .string(bundle.description),
            "liveBundle": .string(liveBundle.description),
            "latencyMs": .number(Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15),
            "agreed": .bool(comparison?.agreed ?? false),
        ]
        switch shadow {
        case .success(let answer):
            data["status"] = .number(200)
            if withOutputs { data["shadow"] = Self.json(answer) }
        case .failure(let error):
            data["status"] = .number(Double(error.httpStatus))
            data["error"] = .string(error.description)
        }
        if let differences = comparison?.differences, !differences.isEmpty {
            data["differences"] = .object(differences.mapValues { .number($0) })
        }
        if withOutputs { data["live"] = Self.json(live) }
        return TelemetryEntry(module: module, kind: .shadow, data: .object(data))
    }

    private static func json(_ bytes: [UInt8]) -> JSONValue {
        (try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))) ?? .string(String(decoding: bytes, as: UTF8.self))
    }
}
