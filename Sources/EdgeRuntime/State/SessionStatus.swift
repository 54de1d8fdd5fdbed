import Foundation

/// The running daemon's broker session, as it last recorded it. `edge-runtime check`
/// reads it while the daemon runs instead of connecting as the device itself: a second
/// connection with the device's identity would take the daemon's session over.
public struct SessionStatus: Codable, Equatable, Sendable {
    public var broker: String
    public var connected: Bool
    /// When `connected` last changed, or the latest failed attempt while it is false.
    public var since: Date
    /// Why the session is down: the connection error or the broker's refusal.
    public var reason: String?
    /// How the latest message on the device's desired topic fared; nil before any.
    public var lastDesiredState: DesiredStateCheck?

    public init(broker: String, connected: Bool, since: Date, reason: String? = nil, lastDesiredState: DesiredStateCheck? = nil) {
        self.broker = broker
        self.connected = connected
        self.since = since
        self.reason = reason
        self.lastDesiredState = lastDesiredState
    }
}

/// Whether a desired-state message verified against the hub key in the device config.
public struct DesiredStateCheck: Codable, Equatable, Sendable {
    public var at: Date
    /// False when the signature, key id or device id did not verify.
    public var verified: Bool
    /// The revision the message carried, when it verified.
    public var revision: Int?
    /// Why it was refused, if it was (an older revision after a reconnect is refused too).
    public var refusal: String?

    public init(at: Date, verified: Bool, revision: Int? = nil, refusal: String? = nil) {
        self.at = at
        self.verified = verified
        self.revision = revision
        self.refusal = refusal
    }
}
