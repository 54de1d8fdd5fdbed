import FleetCore
import Foundation

/// Takes a device out of the fleet for good: its certificate goes on the CA's
/// revocation list (so the broker refuses it once it loads the new list), its
/// bundle-download token stops working, and it is removed from the registry, which
/// takes it out of every deployment and stages an empty desired state for it.
public struct DeviceRevocation: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// What `revoke` did.
    public struct Outcome: Sendable {
        /// Serials of the certificates revoked (none for a device of a plain-MQTT hub).
        public var revokedSerials: [String]
        public var change: RolloutChange
    }

    @discardableResult
    public func revoke(id: String, now: Date = Date()) throws -> Outcome {
        let change = try DeviceRegistry(workspace: workspace).remove(id: id, now: now)
        var serials: [String] = []
        if CertificateAuthority.exists(in: workspace.certificateAuthorityFolder) {
            let authority = try workspace.certificateAuthority()
            if try authority.validSerial(of: id) != nil {
                serials = try authority.revoke(commonName: id, now: now)
            }
        }
        return Outcome(revokedSerials: serials, change: change)
    }
}
