import FleetCore
import Foundation

/// Counts a module's requests and keeps the latency of the most recent ones, for
/// the `inference` block of health reports (p50/p99 over the last `window` requests).
final class InferenceStatistics: @unchecked Sendable {
    private let lock = NSLock()
    private let window: Int
    private var count = 0
    private var errors = 0
    private var latencies: [Double] = []
    private var next = 0

    init(window: Int = 2048) {
        self.window = window
        latencies.reserveCapacity(window)
    }

    func record(latency: Duration, failed: Bool) {
        let milliseconds = Double(latency.components.seconds) * 1000
            + Double(latency.components.attoseconds) / 1e15
        lock.withLock {
            count += 1
            if failed { errors += 1 }
            if latencies.count < window {
                latencies.append(milliseconds)
            } else {
                latencies[next] = milliseconds
            }
            next = (next + 1) % window
        }
    }

    var snapshot: InferenceStats {
        let (count, errors, latencies) = lock.withLock { (self.count, self.errors, self.latencies) }
        let sorted = latencies.sorted()
        return InferenceStats(
            count: count, errors: errors, p50Ms: Self.percentile(0.50, of: sorted),
            p99Ms: Self.percentile(0.99, of: sorted))
    }

    /// Nearest-rank percentile of sorted values; 0 when there are none.
    static func percentile(_ fraction: Double, of sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
