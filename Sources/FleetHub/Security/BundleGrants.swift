import FleetCore
import Foundation
import FleetSQL

/// Which bundles a device token may download: those of the device's current and
/// previous staged desired state, each module's live bundle and its `shadow`. The
/// previous one, so a device that lost its bundle cache can still roll back to it; no
/// other, so a stolen device token does not open every model and scoring script the
/// hub holds.
struct BundleGrants {
    let workspace: Workspace

    func allows(_ digest: ContentDigest, device id: String) throws -> Bool {
        let row = try workspace.database.read { db in
            try db.row("SELECT content, previousContent FROM desiredState WHERE deviceId = ?", [id])
        }
        guard let row else { return false }
        let contents: [String] = [row["content"], row["previousContent"]].compactMap { $0 }
        return try contents.contains { text in
            try FleetJSON.decode(DesiredContent.self, from: Data(text.utf8)).modules.contains {
                $0.bundle.digest == digest || $0.shadow?.bundle.digest == digest
            }
        }
    }
}
