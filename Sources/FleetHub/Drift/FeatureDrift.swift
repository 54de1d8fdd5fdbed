import FleetCore
import Foundation
import FleetSQL

/// How far one input feature of a module on a device moved from its training data: the
/// PSI of the device's latest closed window against the bundle's baseline (docs/drift.md).
public struct FeatureDrift: Codable, Equatable, Sendable {
    public var deviceId: String
    public var module: String
    public var feature: String
    public var bundle: ContentDigest
    public var psi: Double
    /// The feature's values in the window.
    public var count: Int
    public var windowEnd: Date

    public init(
        deviceId: String, module: String, feature: String, bundle: ContentDigest, psi: Double, count: Int, windowEnd: Date
    ) {
        self.deviceId = deviceId
        self.module = module
        self.feature = feature
        self.bundle = bundle
        self.psi = psi
        self.count = count
        self.windowEnd = windowEnd
    }

    /// The PSI of each feature of each module in `report` that has a window and a
    /// baseline (`baseline(bundle)`), in the baseline's feature order.
    public static func scores(
        deviceId: String, report: HealthReport, baseline: (ContentDigest) -> DriftBaseline?
    ) -> [FeatureDrift] {
        report.modules.flatMap { module -> [FeatureDrift] in
            guard let window = module.drift, let baseline = baseline(window.bundle) else { return [] }
            return baseline.features.compactMap { feature -> FeatureDrift? in
                guard let observed = window.features[feature.name] else { return nil }
                let psi: Double?
                if feature.bins != nil, let expected = feature.summary.histogram, let actual = observed.histogram {
                    psi = PopulationStability.index(expected: expected, actual: actual)
                } else if let expected = feature.summary.categories {
                    psi = PopulationStability.index(expected: expected, actual: observed.categories ?? [:])
                } else {
                    psi = nil
                }
                return psi.map {
                    FeatureDrift(
                        deviceId: deviceId, module: module.name, feature: feature.name, bundle: window.bundle, psi: $0,
                        count: observed.count, windowEnd: window.end)
                }
            }
        }
    }

    /// The stored scores of `deviceId` (of every device when nil), by device, module and
    /// feature order of storing.
    public static func stored(_ db: SQLTransaction, deviceId: String? = nil) throws -> [FeatureDrift] {
        try db.rows("SELECT rowid, * FROM inputDrift WHERE (CAST(?1 AS TEXT) IS NULL OR deviceId = ?1) ORDER BY deviceId, module, rowid", [deviceId]).map { row in
            FeatureDrift(
                deviceId: row["deviceId"], module: row["module"], feature: row["feature"],
                bundle: try storedDigest(row["bundle"]), psi: row["psi"], count: row["count"], windowEnd: row["windowEnd"])
        }
    }

    /// One `input-drift` alert per device and module with a feature whose PSI exceeds
    /// `threshold`, naming those features.
    static func alerts(_ db: SQLTransaction, above threshold: Double) throws -> [HealthAlert] {
        let drifted = try db.rows(
            "SELECT deviceId, module, feature, psi FROM inputDrift WHERE psi > ? ORDER BY deviceId, module, psi DESC",
            [threshold])
        var alerts: [HealthAlert] = []
        for row in drifted {
            let subject = "\(row["deviceId"] as String)/\(row["module"] as String)"
            let feature = "\(row["feature"] as String) \(String(format: "%.3f", row["psi"] as Double))"
            if alerts.last?.subject == subject {
                alerts[alerts.count - 1].message += ", \(feature)"
            } else {
                alerts.append(HealthAlert(
                    kind: .inputDrift, subject: subject,
                    message: "input drift on \(subject) (PSI above \(threshold)): \(feature)"))
            }
        }
        return alerts
    }

    /// Replaces what is stored of each of `devices` with `scores` (a device's latest report
    /// says which windows it has now: a module without one has no scores any more).
    static func replace(_ db: SQLTransaction, devices: Set<String>, with scores: [FeatureDrift]) throws {
        try db.execute("DELETE FROM inputDrift WHERE deviceId IN (?…)", each: devices.sorted())
        try db.insert(
            "INSERT INTO inputDrift (deviceId, module, feature, bundle, psi, count, windowEnd)",
            rows: scores.map { score in
                [score.deviceId, score.module, score.feature, score.bundle.description, score.psi, score.count, score.windowEnd]
            })
    }
}
