import FleetCore

/// A module as this device has installed it: the spec it runs, the last spec that
/// proved good (kept for rollback, never deleted), and a version it rolled back from.
public struct AppliedModule: Codable, Equatable, Sendable {
    public var spec: ModuleSpec
    /// The latest spec that stayed up for the rollback window.
    public var lastKnownGood: ModuleSpec?
    /// A bundle this module rolled back from; the same desired state does not retry it.
    public var rejectedDigest: ContentDigest?
    /// Why the module rolled back from `rejectedDigest`.
    public var rejectedReason: String?

    public init(
        spec: ModuleSpec, lastKnownGood: ModuleSpec? = nil, rejectedDigest: ContentDigest? = nil,
        rejectedReason: String? = nil
    ) {
        self.spec = spec
        self.lastKnownGood = lastKnownGood
        self.rejectedDigest = rejectedDigest
        self.rejectedReason = rejectedReason
    }

    public var name: String { spec.name }
}
