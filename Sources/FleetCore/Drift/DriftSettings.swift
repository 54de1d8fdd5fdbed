import Foundation

/// What a scoring module summarises of its inputs so the hub can tell when they drift
/// away from the training data (docs/drift.md): the deployment manifest's
/// `telemetry.drift: {features: auto, windowSeconds: 300}`.
public struct DriftSettings: Codable, Equatable, Sendable {
    /// Which features are summarised.
    public enum Features: Equatable, Sendable {
        /// Every feature of the model's baseline; without a baseline, every column seen.
        case auto
        /// Only these, by name (the baseline's names, or `0`, `1`, … for unnamed columns).
        case named([String])
    }

    public var features: Features
    /// Length of the tumbling window the device summarises over.
    public var windowSeconds: Int

    public init(features: Features = .auto, windowSeconds: Int = 300) {
        self.features = features
        self.windowSeconds = windowSeconds
    }

    /// Whether the feature `name` is summarised.
    public func includes(_ name: String) -> Bool {
        switch features {
        case .auto: true
        case .named(let names): names.contains(name)
        }
    }
}

extension DriftSettings.Features: Codable {
    /// `"auto"` or a list of names.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let names = try? container.decode([String].self) {
            self = .named(names)
            return
        }
        let text = try container.decode(String.self)
        guard text == "auto" else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "drift features must be \"auto\" or a list of names, not \"\(text)\"")
        }
        self = .auto
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .auto: try container.encode("auto")
        case .named(let names): try container.encode(names)
        }
    }
}
