import FleetCore
import Foundation
import FleetSQL
import Synchronization

/// The baseline of each packaged bundle (its `module.json`'s `baseline`), read from the
/// module registry once per digest, for scoring the windows devices report.
final class DriftBaselines: Sendable {
    private let database: SQLDatabase
    private let known = Mutex<[ContentDigest: DriftBaseline]>([:])

    init(database: SQLDatabase) {
        self.database = database
    }

    /// Nil for a bundle the hub did not package or packaged without a baseline.
    func baseline(of bundle: ContentDigest) -> DriftBaseline? {
        if let baseline = known.withLock({ $0[bundle] }) { return baseline }
        let text = try? database.read { db in
            try db.value(as: String.self, "SELECT manifest FROM module WHERE digest = ? LIMIT 1", [bundle.description])
        }
        guard let text, let manifest = try? FleetJSON.decode(ModuleManifest.self, from: Data(text.utf8)),
            let baseline = manifest.baseline
        else { return nil }
        known.withLock { $0[bundle] = baseline }
        return baseline
    }
}
