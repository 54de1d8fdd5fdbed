import Foundation

/// Capped exponential back-off: `initial`, doubling after every consecutive failure, never above `maximum`.
public struct BackOff: Codable, Equatable, Sendable {
    public var initialSeconds: Double
    public var maximumSeconds: Double

    public init(initialSeconds: Double = 1, maximumSeconds: Double = 300) {
        self.initialSeconds = initialSeconds
        self.maximumSeconds = maximumSeconds
    }

    /// The wait after `failures` consecutive failures (1 → `initial`).
    public func delay(afterFailures failures: Int) -> Double {
        guard failures > 0 else { return 0 }
        let doublings = Double(min(failures - 1, 62))
        return min(initialSeconds * pow(2, doublings), maximumSeconds)
    }
}
