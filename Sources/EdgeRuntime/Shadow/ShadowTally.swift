import FleetCore

/// A shadow's running totals since it started: the counters and per-path differences
/// of `ShadowHealth`. Pure, so the arithmetic is tested without processes.
struct ShadowTally: Equatable, Sendable {
    var samples = 0
    var agreed = 0
    var errors = 0
    var skipped = 0
    private var paths: [String: Accumulated] = [:]

    private struct Accumulated: Equatable, Sendable {
        var count = 0
        var sum = 0.0
        var max = 0.0
    }

    /// Counts one answered sample.
    mutating func add(_ comparison: ShadowComparison) {
        samples += 1
        if comparison.agreed { agreed += 1 }
        for (path, difference) in comparison.differences {
            guard paths.count < ShadowComparison.maximumPaths || paths[path] != nil else { continue }
            var accumulated = paths[path] ?? Accumulated()
            accumulated.count += 1
            accumulated.sum += difference
            accumulated.max = Swift.max(accumulated.max, difference)
            paths[path] = accumulated
        }
    }

    /// Counts one sample the shadow failed (raised, timed out, was restarting).
    mutating func addError() {
        samples += 1
        errors += 1
    }

    /// Mean and max absolute difference per output path.
    var differences: [String: NumericDifference] {
        paths.mapValues { NumericDifference(count: $0.count, mean: $0.sum / Double($0.count), max: $0.max) }
    }
}
