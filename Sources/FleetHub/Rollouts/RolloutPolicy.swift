import Foundation

/// A manifest's `rollout:` section: how a new deployment version reaches the devices
/// it targets, in waves, and when the hub stops by itself. Without it, every targeted
/// device gets the new version at once.
public struct RolloutPolicy: Codable, Equatable, Sendable {
    /// Cumulative wave sizes: wave k covers the first `size(k)` devices of the rollout's
    /// order. The last wave always covers every targeted device (100% is appended when
    /// the manifest's last wave is smaller).
    public var waves: [WaveSize]
    /// Devices matching this target expression come first, before the hashed order.
    public var canaryFirst: String?
    /// How long every device of a wave must stay healthy before the next wave.
    public var soakSeconds: Int
    public var abort: AbortCriteria
    public var onAbort: AbortAction
    /// Promote a module's shadow to live on a wave's devices once it compares well.
    public var promoteWhen: PromotionGate?

    public init(
        waves: [WaveSize], canaryFirst: String? = nil, soakSeconds: Int = 60, abort: AbortCriteria = AbortCriteria(),
        onAbort: AbortAction = .halt, promoteWhen: PromotionGate? = nil
    ) {
        self.waves = waves
        self.canaryFirst = canaryFirst
        self.soakSeconds = soakSeconds
        self.abort = abort
        self.onAbort = onAbort
        self.promoteWhen = promoteWhen
    }

    /// The cumulative device count of each wave for `total` targeted devices: never
    /// empty, strictly increasing, ending at `total`.
    public func waveSizes(total: Int) -> [Int] {
        guard total > 0 else { return [0] }
        var sizes: [Int] = []
        for wave in waves {
            let size = min(total, max(1, wave.count(of: total)))
            if size > (sizes.last ?? 0) { sizes.append(size) }
        }
        if sizes.last != total { sizes.append(total) }
        return sizes
    }
}

/// One entry of `waves:`: a device count (`1`) or a share of the targeted devices (`10%`).
public enum WaveSize: Codable, Equatable, Sendable, CustomStringConvertible {
    case devices(Int)
    case percent(Double)

    /// The devices this wave covers out of `total`; a share rounds up, so 10% of 5 is 1.
    public func count(of total: Int) -> Int {
        switch self {
        case .devices(let count): count
        case .percent(let percent): Int((Double(total) * percent / 100).rounded(.up))
        }
    }

    public var description: String {
        switch self {
        case .devices(let count): "\(count)"
        case .percent(let percent):
            percent == percent.rounded() ? "\(Int(percent))%" : "\(percent)%"
        }
    }

    /// Parses `3` or `25%`; nil for anything else.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix("%") {
            guard let value = Double(trimmed.dropLast()), value > 0, value <= 100 else { return nil }
            self = .percent(value)
        } else {
            guard let value = Int(trimmed), value > 0 else { return nil }
            self = .devices(value)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let count = try? container.decode(Int.self) {
            self = .devices(count)
            return
        }
        let text = try container.decode(String.self)
        guard let wave = WaveSize(parsing: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a wave size")
        }
        self = wave
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .devices(let count): try container.encode(count)
        case .percent: try container.encode(description)
        }
    }
}

/// `abort:`: when the devices updated so far say the new version is bad. A criterion
/// left out is not checked, except that any failed or rolled-back device halts a
/// rollout whose manifest has no `abort:` section at all.
public struct AbortCriteria: Codable, Equatable, Sendable {
    /// Halt when more than this share of the updated devices failed, rolled back, or
    /// did not get their modules running within `timeoutSeconds`…
    public var failedPercent: Double
    /// …and at least this many did.
    public var minDevices: Int
    /// Halt when the new version's inference error rate exceeds the previous version's
    /// by this factor (and 1 % in absolute terms).
    public var errorRateFactor: Double?
    /// Halt when the new version's p99 latency exceeds the previous version's by this factor.
    public var p99Factor: Double?
    /// An updated device whose modules are not running this long after its wave was
    /// published counts as failed; an offline one too.
    public var timeoutSeconds: Int

    public init(
        failedPercent: Double = 0, minDevices: Int = 1, errorRateFactor: Double? = nil, p99Factor: Double? = nil,
        timeoutSeconds: Int = 300
    ) {
        self.failedPercent = failedPercent
        self.minDevices = minDevices
        self.errorRateFactor = errorRateFactor
        self.p99Factor = p99Factor
        self.timeoutSeconds = timeoutSeconds
    }

    /// Requests a version must have answered on the updated devices before its error
    /// rate and latency are compared: fewer say nothing.
    public static let minimumRequests = 20
    /// An error rate at or below this never halts, whatever the factor.
    public static let errorRateFloor = 0.01
}

/// `onAbort:`: what a halt does to the devices already updated.
public enum AbortAction: String, Codable, Sendable, CaseIterable {
    /// Keep what is deployed; stop the waves.
    case halt
    /// Put the updated devices back on the previous deployment version.
    case revert
}

/// `promoteWhen: {shadowAgreement: ">= 0.98", minSamples: 500}`: on each wave, the
/// modules' shadows become the live version once, over the wave's devices, at least
/// `minSamples` mirrored requests were compared and the agreement satisfies the
/// comparison. Enough samples that do not satisfy it halt the rollout.
public struct PromotionGate: Codable, Equatable, Sendable {
    public var shadowAgreement: Comparison
    public var minSamples: Int

    public init(shadowAgreement: Comparison, minSamples: Int) {
        self.shadowAgreement = shadowAgreement
        self.minSamples = minSamples
    }
}

/// A threshold written as text, `">= 0.98"`, so the manifest reads as the rule.
public struct Comparison: Codable, Equatable, Sendable, CustomStringConvertible {
    public enum Operator: String, Codable, Sendable, CaseIterable {
        case atLeast = ">=", above = ">", atMost = "<=", below = "<"
    }

    public var op: Operator
    public var value: Double

    public init(_ op: Operator, _ value: Double) {
        self.op = op
        self.value = value
    }

    /// Parses `">= 0.98"`; nil for anything else.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for op in [Operator.atLeast, .atMost, .above, .below] where trimmed.hasPrefix(op.rawValue) {
            guard let value = Double(trimmed.dropFirst(op.rawValue.count).trimmingCharacters(in: .whitespaces)) else {
                return nil
            }
            self.init(op, value)
            return
        }
        return nil
    }

    public func holds(for candidate: Double) -> Bool {
        switch op {
        case .atLeast: candidate >= value
        case .above: candidate > value
        case .atMost: candidate <= value
        case .below: candidate < value
        }
    }

    public var description: String { "\(op.rawValue) \(value)" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let comparison = Comparison(parsing: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a comparison")
        }
        self = comparison
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
