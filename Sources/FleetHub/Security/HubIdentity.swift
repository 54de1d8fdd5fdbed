/// Who in the hub connects to the broker. The broker takes every client's id from its
/// certificate, so that no device can connect under another's id and push it off; then
/// two connections with one certificate would push each other off too, so each
/// long-lived hub connection has a certificate of its own. The colon can never appear
/// in a device id, so no device can be issued a hub identity.
public enum HubIdentity: String, CaseIterable, Sendable {
    /// `fleethub` commands that publish (`deploy`, `publish`, …); they connect one at a
    /// time, in their publishing turn.
    case commands = "fleethub:hub"
    /// `fleethub serve`'s health ingestion.
    case healthIngestion = "fleethub:health"
    /// `fleethub serve`'s rollout controller.
    case rollouts = "fleethub:rollouts"

    /// The certificate and key file names in the CA folder, without extension.
    var fileName: String {
        switch self {
        case .commands: "hub"
        case .healthIngestion: "hub-health"
        case .rollouts: "hub-rollouts"
        }
    }
}
